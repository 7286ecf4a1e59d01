"""Maskers: one RGB uint8 image in, candidate masks out.

Every masker is a callable ``masker(image, path) -> Proposals``: ``image`` is an (H, W, 3) uint8
array, ``path`` the image's path relative to its dataset root (only the ground-truth masker needs
it, to find the instance masks shipped with the dataset). The coarsest-region selection and the
``min_area`` filter of :mod:`masking.regions` are applied afterwards, the same for every masker
(:func:`regions_of`). Adding a masker is one file with a class plus one line in ``MASKERS``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from masking.regions import PAPER_MIN_AREA, REFERENCE_CONTAINMENT, Regions, select_regions


@dataclass(frozen=True)
class Proposals:
    """Candidate masks of one image: masks (N, H, W) bool and scores (N,) float32."""

    masks: np.ndarray
    scores: np.ndarray


class Masker(Protocol):
    """``__call__`` handles one image; a masker may also offer ``batch(images, paths)`` to handle
    several at once (HQ-SAM runs its encoder on a batch); :func:`regions_of_batch` uses it."""

    def __call__(self, image: np.ndarray, path: str) -> Proposals: ...


def _felzenszwalb(**params: Any) -> Masker:
    from masking.maskers.felzenszwalb import FelzenszwalbMasker

    return FelzenszwalbMasker(**params)


def _ground_truth(**params: Any) -> Masker:
    from masking.maskers.ground_truth import GroundTruthMasker

    return GroundTruthMasker(**params)


def _features(**params: Any) -> Masker:
    from masking.maskers.features import FeaturesMasker

    return FeaturesMasker(**params)


def _hqsam(**params: Any) -> Masker:
    from masking.maskers.hqsam import HQSAMMasker

    return HQSAMMasker(**params)


MASKERS: dict[str, Callable[..., Masker]] = {
    "felzenszwalb": _felzenszwalb,
    "features": _features,
    "ground_truth": _ground_truth,
    "hqsam": _hqsam,
}
"""Masker name -> factory taking the masker's own parameters as keywords."""

MASKER_CLASSES = {
    "felzenszwalb": "masking.maskers.felzenszwalb:FelzenszwalbMasker",
    "features": "masking.maskers.features:FeaturesMasker",
    "ground_truth": "masking.maskers.ground_truth:GroundTruthMasker",
    "hqsam": "masking.maskers.hqsam:HQSAMMasker",
}
"""Masker name -> ``module:class`` (imported on demand: HQSAM's module imports torch)."""


def masker_class(name: str) -> type:
    module, cls = MASKER_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def masker_parameters(name: str) -> dict[str, tuple[Any, Any]]:
    """The schema of a masker's ``params``: name -> (type annotation, default), read from its class's
    constructor signature (plus ``extra_parameters``, a class attribute of the same shape, for what it
    takes as ``**kwargs``; HQ-SAM: the mask generator's settings). A parameter without a default
    gets ``inspect.Parameter.empty``. Another package (the orchestrator) turns this into a validator."""
    cls = masker_class(name)
    hints = typing.get_type_hints(cls.__init__, vars(importlib.import_module(cls.__module__)))
    out: dict[str, tuple[Any, Any]] = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        out[param.name] = (hints.get(param.name, Any), param.default)
    out.update(getattr(cls, "extra_parameters", lambda: {})())
    return out


def check_masker_params(name: str, params: Mapping[str, Any]) -> None:
    """The masker's own value checks that need no model (ValueError, one line); names and types are
    checked against :func:`masker_parameters` by the caller."""
    check = getattr(masker_class(name), "check_params", None)
    if check is not None:
        check(dict(params))


@dataclass(frozen=True)
class MaskerConfig:
    """What a region store depends on: the masker, its parameters and the region selection."""

    name: str = "felzenszwalb"
    params: Mapping[str, Any] = field(default_factory=dict)
    min_area: int = PAPER_MIN_AREA
    containment: float = REFERENCE_CONTAINMENT
    keep_masks: bool = False
    """Keep each region's mask in the store too (run-length encoded), for previews and purity
    without running the masker again; boxes are all training needs."""

    def __post_init__(self) -> None:
        if self.name not in MASKERS:
            raise ValueError(f"unknown masker {self.name!r}; known: {', '.join(sorted(MASKERS))}")

    def build(self) -> Masker:
        return MASKERS[self.name](**dict(self.params))

    def as_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "params": dict(sorted(self.params.items())),
            "min_area": self.min_area,
            "containment": self.containment,
        }
        if self.keep_masks:  # only when set: stores computed before the option keep their fingerprints
            out["keep_masks"] = True
        return out

    def digest(self) -> str:
        """A short stable hash of this configuration (part of a region store's fingerprint)."""
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _select(proposals: Proposals, config: MaskerConfig) -> Regions:
    if len(proposals.masks) == 0:
        empty = Regions.empty()
        return Regions(empty.boxes, empty.areas, empty.scores, [] if config.keep_masks else None)
    return select_regions(proposals.masks, proposals.scores, config.min_area, config.containment, config.keep_masks)


def regions_of(masker: Masker, config: MaskerConfig, image: np.ndarray, path: str) -> Regions:
    """Run ``masker`` on one image and keep its coarsest regions of at least ``min_area`` px."""
    return _select(masker(image, path), config)


def regions_of_batch(masker: Masker, config: MaskerConfig, images: list[np.ndarray], paths: list[str]) -> list[Regions]:
    """:func:`regions_of` for several images, in one call when the masker can batch."""
    batch = getattr(masker, "batch", None)
    proposals = batch(images, paths) if batch is not None else [masker(i, p) for i, p in zip(images, paths)]
    return [_select(p, config) for p in proposals]
