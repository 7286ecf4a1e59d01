"""Crop geometry: where a method's views are cut, whole-image (``random``) or SAM-guided (``regions``).

``regions`` is SAMCLR's sampling (paper, Sec. 3): each time an image is drawn, one of its kept
regions is picked uniformly, its box is enlarged by ``c`` (paper: 1.3) and clipped, and *every*
view of that image is a random-resized crop whose domain is that box instead of the whole image.
An image with no region falls back to the whole image, which is exactly ``random``.

Both modes share one code path; only the crop domain differs. The crop box is computed in image
coordinates and cut and resized in one step (``resized_crop``: PIL ``resize(box=...)``), so a
region view costs the same as a whole-image view. Only boxes are drawn here: what happens to a view
after its crop (colour jitter, blur, flip, normalisation) is training's (``selfsup.augment``,
``selfsup.views``). All randomness comes from torch's generator, which DataLoader seeds per worker,
so the draws are safe and reproducible in worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from masking.regions import PAPER_C, enlarge_boxes

SAMPLINGS = ("random", "regions")
Box = tuple[float, float, float, float]


def uniform(lo: float, hi: float) -> float:
    """One draw uniform in [lo, hi) from torch's global generator."""
    return lo + (hi - lo) * torch.rand(()).item()


def sample_crop(domain: Sequence[float], scale: tuple[float, float], ratio: tuple[float, float]) -> Box:
    """A random-resized-crop box (x0, y0, x1, y1) inside ``domain``, in float pixels.

    The same law as ``torchvision.transforms.RandomResizedCrop`` (area fraction uniform in
    ``scale``, log aspect ratio uniform in ``ratio``, 10 tries, then a centre crop with the ratio
    clamped), with the domain's area in place of the image's and continuous positions.
    """
    x0, y0, x1, y1 = (float(v) for v in domain)
    w, h = x1 - x0, y1 - y0
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * uniform(*scale)
        aspect = math.exp(uniform(*log_ratio))
        cw, ch = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if 0 < cw <= w and 0 < ch <= h:
            left = x0 + uniform(0, w - cw)
            top = y0 + uniform(0, h - ch)
            return left, top, left + cw, top + ch
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, w / ratio[0]
    elif in_ratio > ratio[1]:
        cw, ch = h * ratio[1], h
    else:
        cw, ch = w, h
    left, top = x0 + (w - cw) / 2, y0 + (h - ch) / 2
    return left, top, left + cw, top + ch


def resized_crop(image: Image.Image, box: Sequence[float], size: int) -> Image.Image:
    """``box`` (x0, y0, x1, y1, float pixels) of ``image`` cut and resized to ``size`` x ``size`` in
    one step (PIL's antialiased bilinear filter over the box)."""
    return image.resize((size, size), Image.BILINEAR, box=tuple(box))


@dataclass(frozen=True)
class CropSpec:
    """``n`` views of ``size`` px whose area is a ``scale`` fraction of the crop domain and whose
    aspect ratio lies in ``ratio``. Defaults: ``torchvision.transforms.RandomResizedCrop``'s scale
    and ratio (lightly's ``SimCLRTransform`` keeps them), SimCLR's two views, the SAMCLR paper's
    128 px (Sec. 4.1)."""

    n: int = 2
    size: int = 128
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)


class CropSampler:
    """The crop boxes of a method's views, one draw per call of ``crop_boxes``.

    ``crops``: the views to draw, e.g. ``(CropSpec(2, 128),)`` for SimCLR or a global and a local
    spec for multi-crop methods. With ``sampling="regions"`` every view of one draw lies inside the
    same enlarged region box.
    """

    def __init__(self, crops: Sequence[CropSpec] = (CropSpec(),), sampling: str = "random", c: float = PAPER_C):
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; known: {', '.join(SAMPLINGS)}")
        if c < 1:
            raise ValueError(f"c must be >= 1, got {c}")
        self.crops = tuple(crops)
        self.sampling = sampling
        self.c = c

    def domain(self, width: int, height: int, boxes: np.ndarray | None) -> Box:
        """The crop domain of one draw: a random enlarged region, or the whole image."""
        if self.sampling == "regions" and boxes is not None and len(boxes):
            k = int(torch.randint(len(boxes), ()).item())
            return tuple(enlarge_boxes(boxes[k : k + 1], self.c, width, height)[0])
        return 0.0, 0.0, float(width), float(height)

    def crop_boxes(self, width: int, height: int, boxes: np.ndarray | None) -> list[Box]:
        """The crop box of every view of one draw, in image coordinates (order of ``crops``)."""
        domain = self.domain(width, height, boxes)
        return [sample_crop(domain, spec.scale, spec.ratio) for spec in self.crops for _ in range(spec.n)]
