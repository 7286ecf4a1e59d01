"""The ``METHODS`` registry: adding a method is one small file plus one line here.

A method is an ``nn.Module`` with a ``backbone`` attribute whose ``forward(views)`` returns the
loss of a batch. It may define ``on_step_start(step, total_steps)`` (EMA teachers, schedules;
called before the forward pass) and ``on_after_backward(step, total_steps)`` (gradient surgery;
called before the optimiser step). Its ``MethodSpec`` says how to build it from the backbone and
the resolved ``TrainConfig``, which views it takes and its defaults; every method gets the same
training loop, checkpoints and evaluation. ``sampling`` is a separate axis: any method runs with
``random`` or ``regions`` views (``samclr`` is simply SimCLR with regions at temperature 0.07).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from masking.sampler import CropSpec
from selfsup.methods.byol import BYOL
from selfsup.methods.dino import DINO
from selfsup.methods.moco import MoCo
from selfsup.methods.sce import SCE
from selfsup.methods.simclr import SimCLR
from selfsup.methods.swav import SwAV


def two_views(cfg: Any) -> tuple[CropSpec, ...]:
    return (CropSpec(2, cfg.image_size, (cfg.min_scale, 1.0)),)


def multi_crop(global_scale: tuple[float, float], local_scale: tuple[float, float]) -> Callable[[Any], tuple[CropSpec, ...]]:
    """2 global crops at the view size and 6 local crops at half of it (SAMCLR paper, Sec. 4.1:
    DINO with 2 x 128 px + 6 x 64 px)."""
    return lambda cfg: (CropSpec(2, cfg.image_size, global_scale), CropSpec(6, max(8, cfg.image_size // 2), local_scale))


@dataclass(frozen=True)
class MethodSpec:
    """``build(backbone, feature_dim, train_config)`` makes the module; ``crops(train_config)`` its views.
    ``temperature`` is the default, None for methods that have none (the axis is then ignored)."""

    build: Callable[[nn.Module, int, Any], nn.Module]
    sampling: str = "random"
    temperature: float | None = 0.5
    crops: Callable[[Any], tuple[CropSpec, ...]] = two_views


METHODS: dict[str, MethodSpec] = {
    "simclr": MethodSpec(lambda b, d, cfg: SimCLR(b, d, cfg.temperature)),  # lightly's default 0.5
    "samclr": MethodSpec(lambda b, d, cfg: SimCLR(b, d, cfg.temperature), sampling="regions", temperature=0.07),  # paper
    "moco": MethodSpec(lambda b, d, cfg: MoCo(b, d, cfg.temperature), temperature=0.2),  # MoCo v2
    "byol": MethodSpec(lambda b, d, cfg: BYOL(b, d), temperature=None),
    "dino": MethodSpec(lambda b, d, cfg: DINO(b, d, cfg.epochs), temperature=None, crops=multi_crop((0.4, 1.0), (0.05, 0.4))),
    "swav": MethodSpec(lambda b, d, cfg: SwAV(b, d, cfg.epochs, cfg.temperature), temperature=0.1, crops=multi_crop((0.14, 1.0), (0.05, 0.14))),
    "sce": MethodSpec(lambda b, d, cfg: SCE(b, d, cfg.temperature), temperature=0.1),  # Denize et al.: tau 0.1
}


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]
