"""The ``METHODS`` registry: adding a method is one small file plus one entry here.

A method is an ``nn.Module`` with a ``backbone`` attribute whose ``forward(views)`` returns the
loss of a batch. It may define ``on_step_start(step, total_steps)`` (EMA teachers, schedules;
called before the forward pass) and ``on_after_backward(step, total_steps)`` (gradient surgery;
called before the optimiser step). Its ``MethodSpec`` names its settings dataclass (a
``MethodSettings``: its hyperparameters, optimiser and augmentation strengths) with the two presets
``lightly`` and ``paper``, how to build it, and which views it takes; every method gets the same
training loop, checkpoints and evaluation. ``sampling`` is a separate axis: any method runs with
``random`` or ``regions`` views (``samclr`` is SimCLR with regions at temperature 0.07).

``frozen`` is the one entry that does not train (``MethodSpec.trains`` false, no ``build``): a
frozen encoder (SAM, DINOv2, CLIP, ImageNet ResNet; ``selfsup.encoders``) evaluated by the same
KNN and linear probe (``selfsup.frozen``), a reference row beside the trained trials.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch.nn as nn
from pydantic import TypeAdapter, ValidationError

from selfsup.augment import Photometric
from selfsup.views import ViewSpec, byol_views, dino_views, simclr_views, swav_views
from selfsup.methods import byol, dino, frozen, moco, sce, simclr, swav
from selfsup.methods.settings import MethodSettings

PRESETS = ("lightly", "paper")
Views = Callable[[Any, int], tuple[ViewSpec, ...]]


@functools.cache
def _adapter(settings: type[MethodSettings]) -> TypeAdapter:
    return TypeAdapter(settings)


def _two_views(s: Any, size: int) -> tuple[ViewSpec, ...]:
    return simclr_views(size, min_scale=s.min_scale)


def _multi_crop(size: int) -> int:
    """Local / low-resolution crops at half the view size (SAMCLR paper, Sec. 4.1: DINO with
    2 x 128 px + 6 x 64 px; lightly's benchmark: SwAV and DINO at 128 and 64 px)."""
    return max(8, size // 2)


def _dino_views(s: dino.DINOSettings, size: int) -> tuple[ViewSpec, ...]:
    return dino_views(size, _multi_crop(size), global_scale=s.global_scale, local_scale=s.local_scale, n_local=s.n_local)


def _swav_views(s: swav.SwAVSettings, size: int) -> tuple[ViewSpec, ...]:
    return swav_views(
        sizes=(size, _multi_crop(size)), counts=(2, s.n_low),
        min_scales=(s.high_scale[0], s.low_scale[0]), max_scales=(s.high_scale[1], s.low_scale[1]),
    )


@dataclass(frozen=True)
class MethodSpec:
    """``build(backbone, feature_dim, settings, epochs)`` makes the module; ``views(settings, image_size)``
    its crops (each with the method's own augmentations); ``presets`` its settings by preset name.
    ``trains`` false (and no ``build``): a frozen encoder, evaluated without training (``frozen``)."""

    settings: type[MethodSettings] | type[frozen.FrozenSettings]
    presets: Mapping[str, Any]
    build: Callable[[nn.Module, int, Any, int], nn.Module] | None
    views: Views = _two_views
    sampling: str = "random"
    twin: str | None = None
    """The method whose whole-image views this one's region views are compared with (samclr: simclr)."""
    trains: bool = True

    def resolve(self, preset: str, overrides: Mapping[str, Any] = {}) -> MethodSettings:
        """The preset's settings with ``overrides`` applied; ValueError naming an unknown key."""
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(self.presets)}")
        known = {f.name for f in dataclasses.fields(self.settings)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown method setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = {**dataclasses.asdict(self.presets[preset]), **overrides}
        try:
            return _adapter(self.settings).validate_python(values)
        except ValidationError as err:
            first = err.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']} (got {first.get('input')!r})") from None

    def crops(self, settings: MethodSettings, image_size: int) -> tuple[ViewSpec, ...]:
        """The method's views with the settings' colour-jitter strength and, if set, blur probability."""
        if not self.trains:
            raise ValueError("a frozen encoder draws no views (it is not trained)")

        def adjust(p: Photometric | None) -> Photometric:
            p = dataclasses.replace(p or Photometric(), cj_strength=settings.cj_strength)
            return p if settings.blur_prob is None else dataclasses.replace(p, blur_prob=settings.blur_prob)

        return tuple(dataclasses.replace(c, photometric=adjust(c.photometric)) for c in self.views(settings, image_size))


METHODS: dict[str, MethodSpec] = {
    "simclr": MethodSpec(simclr.SimCLRSettings, simclr.PRESETS, lambda b, d, s, e: simclr.SimCLR(b, d, s)),
    "samclr": MethodSpec(
        simclr.SimCLRSettings, simclr.SAMCLR_PRESETS, lambda b, d, s, e: simclr.SimCLR(b, d, s), sampling="regions", twin="simclr"
    ),
    "moco": MethodSpec(moco.MoCoSettings, moco.PRESETS, lambda b, d, s, e: moco.MoCo(b, d, s)),
    "byol": MethodSpec(byol.BYOLSettings, byol.PRESETS, lambda b, d, s, e: byol.BYOL(b, d, s), views=lambda s, size: byol_views(size, min_scale=s.min_scale)),
    "dino": MethodSpec(dino.DINOSettings, dino.PRESETS, lambda b, d, s, e: dino.DINO(b, d, s, e), views=_dino_views),
    "swav": MethodSpec(swav.SwAVSettings, swav.PRESETS, lambda b, d, s, e: swav.SwAV(b, d, s, e), views=_swav_views),
    "sce": MethodSpec(sce.SCESettings, sce.PRESETS, lambda b, d, s, e: sce.SCE(b, d, s)),
    "frozen": MethodSpec(frozen.FrozenSettings, frozen.PRESETS, None, trains=False),
}

TRAINED = tuple(name for name, spec in METHODS.items() if spec.trains)
"""The methods that pretrain a backbone (all but ``frozen``)."""

METHOD_KEYS = tuple(sorted({f.name for spec in METHODS.values() for f in dataclasses.fields(spec.settings)}))
"""Every method setting's name: a sweep file's ``train`` and ``grid`` accept these beside TrainConfig's."""


PAPER_PRESET = "lightly"
"""The preset of the SAMCLR paper's comparison: SAMCLR at its own temperature (0.07, Sec. 4.1; its
``lightly`` and ``paper`` presets agree), its baselines at "Lightly's implementations with default
optimizers and hyperparameters" (SimCLR: lightly's NT-Xent default, 0.5)."""


def twin(name: str) -> str:
    """The method whose whole-image views ``name``'s region views are compared with: its ``twin``
    (samclr: simclr), else the method itself (every method runs with either sampling); an unknown
    name (a run of an older registry) is its own twin."""
    spec = METHODS.get(name)
    return (spec.twin or name) if spec else name


def paper_pairing(name: str) -> tuple[float, float] | None:
    """The SAMCLR paper's pairing for region views of ``name`` against whole-image views of its twin:
    (region temperature, whole-image temperature), both from the registry at ``PAPER_PRESET``: the
    method that names this twin (samclr: 0.07) and the twin itself (simclr: 0.5). None when no method
    names ``name``'s twin as its own, or either has no temperature."""
    base = twin(name)
    region = next((spec for spec in METHODS.values() if spec.twin is not None and spec.twin == base), None)
    if region is None or base not in METHODS:
        return None
    taus = [getattr(s.presets[PAPER_PRESET], "temperature", None) for s in (region, METHODS[base])]
    return None if None in taus else (float(taus[0]), float(taus[1]))


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]
