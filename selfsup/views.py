"""A method's views: which crops it takes with which augmentations, and the CPU view maker.

``ViewSpec`` is a crop (``masking.crops.CropSpec``: count, size, scale, ratio) with its own
photometric settings (``selfsup.augment.Photometric``). ``ViewSampler`` makes the views of one
image on a CPU worker: the crop boxes of one draw (``masking.crops.CropSampler``: ``random`` or
SAMCLR's ``regions``), each cut and resized in one step, then its spec's augmentations and
ImageNet normalisation. The device path (``selfsup.data.device_views.DeviceViews``) makes the same
views in batches from the same specs.

``simclr_views`` ... ``swav_views`` are the methods' recipes with lightly 1.6's per-view
augmentations: each returns the views in the order lightly's transform returns them, every spec
with its own ``Photometric`` (defaults cited from the lightly class named in each docstring). What
lightly does and these views do not: DINO's crops are resized bicubically by lightly, bilinearly
here (every view is resized with PIL's bilinear filter, ``masking.crops.resized_crop``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from masking.crops import CropSampler, CropSpec, resized_crop
from masking.regions import PAPER_C
from selfsup.augment import Photometric, simclr_photometric


@dataclass(frozen=True)
class ViewSpec(CropSpec):
    """A ``CropSpec`` (``n`` views of ``size`` px, crop ``scale`` and ``ratio``) with these views'
    own augmentations; ``photometric`` ``None``: the view maker's default (``ViewSampler``'s or
    ``DeviceViews``'), SimCLR's unless it was given others."""

    photometric: Photometric | None = None


def own_photometric(spec: CropSpec) -> Photometric | None:
    """The augmentations a spec carries: a ``ViewSpec``'s ``photometric``; ``None`` for a plain
    ``CropSpec`` (geometry only), which gets the view maker's default."""
    return spec.photometric if isinstance(spec, ViewSpec) else None


class ViewSampler(CropSampler):
    """Turns (image, region boxes) into a method's views: the crop boxes of one draw
    (``CropSampler.crop_boxes``), each cut and resized to its spec's size, then augmented.

    ``crops``: e.g. ``(ViewSpec(2, 128),)`` for SimCLR or a global and a local spec for multi-crop
    methods. With ``sampling="regions"`` every view of one call lies inside the same enlarged
    region box. Each spec's views get the spec's own ``photometric`` pipeline when it has one, else
    ``photometric`` (default: SimCLR's, ``simclr_photometric()``).
    """

    def __init__(
        self,
        crops: Sequence[CropSpec] = (ViewSpec(),),
        sampling: str = "random",
        c: float = PAPER_C,
        photometric: T.Compose | None = None,
    ):
        super().__init__(crops, sampling, c)
        self.photometric = photometric if photometric is not None else simclr_photometric()
        self.pipelines = [own.compose() if (own := own_photometric(spec)) else self.photometric for spec in self.crops]

    def __call__(self, image: Image.Image, boxes: np.ndarray | None = None) -> list[torch.Tensor]:
        views = [(spec.size, pipeline) for spec, pipeline in zip(self.crops, self.pipelines) for _ in range(spec.n)]
        crop_boxes = self.crop_boxes(image.width, image.height, boxes)
        return [pipeline(resized_crop(image, box, size)) for (size, pipeline), box in zip(views, crop_boxes)]


# lightly.transforms.BYOLView1Transform / BYOLView2Transform: jitter 0.4/0.4/0.2/0.1, sigmas (0.1, 2)
_BYOL = {"cj_bright": 0.4, "cj_contrast": 0.4, "cj_sat": 0.2, "cj_hue": 0.1}
# lightly.transforms.DINOTransform: jitter 0.8/0.8/0.4/0.2 x cj_strength 0.5, sigmas (0.1, 2)
_DINO = {"cj_bright": 0.8, "cj_contrast": 0.8, "cj_sat": 0.4, "cj_hue": 0.2}


def simclr_views(size: int, min_scale: float = 0.08, photometric: Photometric = Photometric()) -> tuple[ViewSpec, ...]:
    """``lightly.transforms.SimCLRTransform``: two views of ``size`` px, crop scale (``min_scale``
    (lightly: 0.08), 1), both with ``photometric`` (``Photometric()`` is SimCLRTransform's defaults:
    jitter 0.8/0.8/0.8/0.2 with p 0.8, grayscale 0.2, blur 0.5 with sigma in [0.1, 2], flip 0.5)."""
    return (ViewSpec(2, size, (min_scale, 1.0), photometric=photometric),)


def byol_views(size: int, min_scale: float = 0.08) -> tuple[ViewSpec, ...]:
    """``lightly.transforms.BYOLTransform``: view 1 then view 2, ``size`` px, crop scale
    (``min_scale`` (lightly: 0.08), 1), jitter 0.4/0.4/0.2/0.1 (cj_strength 1) with p 0.8, grayscale
    0.2, flip 0.5; ``BYOLView1Transform``: blur p 1.0, no solarisation; ``BYOLView2Transform``: blur
    p 0.1, solarisation p 0.2."""
    return (
        ViewSpec(1, size, (min_scale, 1.0), photometric=Photometric(**_BYOL, blur_prob=1.0)),
        ViewSpec(1, size, (min_scale, 1.0), photometric=Photometric(**_BYOL, blur_prob=0.1, solarize_prob=0.2)),
    )


def dino_views(
    global_size: int,
    local_size: int,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    n_local: int = 6,
    cj_strength: float = 0.5,
) -> tuple[ViewSpec, ...]:
    """``lightly.transforms.DINOTransform``: two global views of ``global_size`` px (crop scale
    ``global_scale``, lightly: (0.4, 1)), then ``n_local`` (lightly: 6) local views of
    ``local_size`` px (``local_scale``, lightly: (0.05, 0.4)). All: jitter 0.8/0.8/0.4/0.2 ×
    ``cj_strength`` (lightly: 0.5) with p 0.8, grayscale 0.2, flip 0.5, blur sigma in [0.1, 2].
    Global view 1: blur p 1.0, no solarisation; global view 2: blur p 0.1, solarisation p 0.2;
    local views: blur p 0.5, no solarisation (lightly passes ``solarization_prob=0`` to them).

    As in lightly 1.6, global view 2 keeps cj_strength 0.5 whatever ``cj_strength`` is:
    ``DINOTransform`` does not pass ``cj_strength`` on to that view's ``DINOViewTransform``, whose
    default is 0.5.
    """
    global_1 = Photometric(**_DINO, cj_strength=cj_strength, blur_prob=1.0)
    global_2 = Photometric(**_DINO, cj_strength=0.5, blur_prob=0.1, solarize_prob=0.2)
    local = Photometric(**_DINO, cj_strength=cj_strength, blur_prob=0.5)
    return (
        ViewSpec(1, global_size, global_scale, photometric=global_1),
        ViewSpec(1, global_size, global_scale, photometric=global_2),
        ViewSpec(n_local, local_size, local_scale, photometric=local),
    )


def swav_views(
    sizes: tuple[int, ...] = (224, 96),
    counts: tuple[int, ...] = (2, 6),
    min_scales: tuple[float, ...] = (0.14, 0.05),
    max_scales: tuple[float, ...] = (1.0, 0.14),
    cj_strength: float = 1.0,
) -> tuple[ViewSpec, ...]:
    """``lightly.transforms.SwaVTransform``: ``counts`` (lightly: (2, 6)) views of ``sizes``
    (lightly: (224, 96)) px, high resolution first, crop scales (``min_scales``, ``max_scales``)
    (lightly: (0.14, 0.05) to (1.0, 0.14)). Every crop gets ``SwaVViewTransform``'s SimCLR-like
    augmentations: jitter 0.8/0.8/0.8/0.2 × ``cj_strength`` (lightly: 1.0) with p 0.8, grayscale
    0.2, blur p 0.5 with sigma in [0.1, 2], flip 0.5, no solarisation."""
    if not len(sizes) == len(counts) == len(min_scales) == len(max_scales):
        raise ValueError("sizes, counts, min_scales and max_scales must have the same length (lightly's rule)")
    photometric = Photometric(cj_strength=cj_strength, blur_prob=0.5)
    return tuple(
        ViewSpec(n, size, (lo, hi), photometric=photometric)
        for size, n, lo, hi in zip(sizes, counts, min_scales, max_scales)
    )
