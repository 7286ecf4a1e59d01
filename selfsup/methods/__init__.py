"""The ``METHODS`` registry: adding a method is one small file plus one line here.

A method is an ``nn.Module`` with a ``backbone`` attribute whose ``forward(views)`` returns the
loss of a batch; it may define ``on_step(step, total_steps)`` for per-step work (EMA, queues).
Its ``MethodSpec`` says how to build it and which views and defaults it uses; every method gets
the same training loop and evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from masking.sampler import CropSpec
from selfsup.methods.simclr import SimCLR


@dataclass(frozen=True)
class MethodSpec:
    """``build(backbone, feature_dim, temperature)`` makes the module; ``crops(train_config)`` its views."""

    build: Callable[[nn.Module, int, float], nn.Module]
    sampling: str = "random"
    temperature: float = 0.5
    crops: Callable[[Any], tuple[CropSpec, ...]] = lambda cfg: (CropSpec(2, cfg.image_size, (cfg.min_scale, 1.0)),)


METHODS: dict[str, MethodSpec] = {
    "simclr": MethodSpec(lambda b, d, t: SimCLR(b, d, t)),  # lightly's default temperature 0.5
    "samclr": MethodSpec(lambda b, d, t: SimCLR(b, d, t), sampling="regions", temperature=0.07),  # paper Sec. 4.1
}


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]
