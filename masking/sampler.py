"""View sampler: whole-image random-resized crops (``random``) or SAM-guided ones (``regions``).

``regions`` is SAMCLR's sampler (paper, Sec. 3): each time an image is drawn, one of its kept
regions is picked uniformly, its box is enlarged by ``c`` (paper: 1.3) and clipped, and *every*
view of that image is a random-resized crop whose domain is that box instead of the whole image.
An image with no region falls back to the whole image, which is exactly ``random``.

Both modes share one code path; only the crop domain differs. The crop box is computed in image
coordinates and cut and resized in one step (PIL ``resize(box=...)``), so a region view costs the
same as a whole-image view. Photometric augmentations default to SimCLR's with lightly's default
parameters (``lightly.transforms.SimCLRTransform``: colour jitter 0.8/0.8/0.8/0.2 applied with
p = 0.8, grayscale p = 0.2, Gaussian blur p = 0.5 with sigma in [0.1, 2], horizontal flip p = 0.5,
ImageNet normalisation); a ``CropSpec`` may carry its own (``masking.views``: DINO, BYOL, SwAV's
per-view settings). All randomness comes from torch's generator, which DataLoader seeds per
worker, so the sampler is safe and reproducible in worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

from masking.regions import PAPER_C, enlarge_boxes

SAMPLINGS = ("random", "regions")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(()).item()


def sample_crop(domain: Sequence[float], scale: tuple[float, float], ratio: tuple[float, float]) -> tuple[float, float, float, float]:
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
        target = area * _uniform(*scale)
        aspect = math.exp(_uniform(*log_ratio))
        cw, ch = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if 0 < cw <= w and 0 < ch <= h:
            left = x0 + _uniform(0, w - cw)
            top = y0 + _uniform(0, h - ch)
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


class RandomSolarization:
    """lightly's ``RandomSolarization`` (PIL ``ImageOps.solarize``, threshold 128: values >= 128
    become 255 - value) with probability ``prob``, drawing from torch's RNG."""

    def __init__(self, prob: float = 0.5, threshold: int = 128):
        self.prob, self.threshold = prob, threshold

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()).item() < self.prob:
            return ImageOps.solarize(img, threshold=self.threshold)
        return img


class RandomGaussianBlur:
    """lightly's ``GaussianBlur`` (PIL blur, p = 0.5, sigma ~ U(0.1, 2)) drawing from torch's RNG."""

    def __init__(self, prob: float = 0.5, sigmas: tuple[float, float] = (0.1, 2.0)):
        self.prob, self.sigmas = prob, sigmas

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()).item() < self.prob:
            return img.filter(ImageFilter.GaussianBlur(radius=_uniform(*self.sigmas)))
        return img


@dataclass(frozen=True)
class Photometric:
    """The augmentations after the crop: the one set of settings both input paths draw from (PIL
    on CPU workers here, ``selfsup.data.device_views.DeviceViews`` on the training device).

    Defaults are ``lightly.transforms.SimCLRTransform``'s (lightly 1.6). The jitter fields are
    named as lightly names them: each of ``cj_bright``, ``cj_contrast``, ``cj_sat``, ``cj_hue`` is
    multiplied by ``cj_strength``. ``solarize_prob`` is lightly's ``RandomSolarization`` (used by
    ``DINOTransform`` and ``BYOLView2Transform``; SimCLR has none), applied after the blur as
    lightly's transforms do.
    """

    cj_prob: float = 0.8
    cj_strength: float = 1.0
    gray_prob: float = 0.2
    blur_prob: float = 0.5
    sigmas: tuple[float, float] = (0.1, 2.0)
    hflip_prob: float = 0.5
    normalize: bool = True
    cj_bright: float = 0.8
    cj_contrast: float = 0.8
    cj_sat: float = 0.8
    cj_hue: float = 0.2
    solarize_prob: float = 0.0

    @property
    def jitter(self) -> tuple[float, float, float, float]:
        """Brightness, contrast, saturation and hue jitter: ``cj_bright`` ... ``cj_hue`` × ``cj_strength``."""
        s = self.cj_strength
        return (self.cj_bright * s, self.cj_contrast * s, self.cj_sat * s, self.cj_hue * s)

    def compose(self) -> T.Compose:
        """The PIL/torchvision pipeline: flip, jitter, grayscale, blur, solarisation (only when
        ``solarize_prob`` > 0, so SimCLR's draws are unchanged), to tensor, normalise."""
        steps = [
            T.RandomHorizontalFlip(self.hflip_prob),
            T.RandomApply([T.ColorJitter(*self.jitter)], p=self.cj_prob),
            T.RandomGrayscale(self.gray_prob),
            RandomGaussianBlur(self.blur_prob, self.sigmas),
        ]
        if self.solarize_prob > 0:
            steps.append(RandomSolarization(self.solarize_prob))
        steps.append(T.ToTensor())
        if self.normalize:
            steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
        return T.Compose(steps)


@dataclass(frozen=True)
class CropSpec:
    """``n`` views of ``size`` px whose area is a ``scale`` fraction of the crop domain.

    ``photometric``: these views' own augmentations; ``None``: the sampler's (or ``DeviceViews``')
    default, SimCLR's unless it was given others.
    """

    n: int = 2
    size: int = 128
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    photometric: Photometric | None = None


def simclr_photometric(**settings) -> T.Compose:
    """``Photometric(**settings).compose()``: SimCLR's augmentations after the crop."""
    return Photometric(**settings).compose()


class ViewSampler:
    """Turns (image, region boxes) into a method's views.

    ``crops``: the views to draw, e.g. ``(CropSpec(2, 128),)`` for SimCLR or a global and a local
    spec for multi-crop methods. With ``sampling="regions"`` every view of one call lies inside the
    same enlarged region box. Each spec's views get the spec's own ``photometric`` pipeline when it
    has one, else ``photometric`` (default: SimCLR's).
    """

    def __init__(
        self,
        crops: Sequence[CropSpec] = (CropSpec(),),
        sampling: str = "random",
        c: float = PAPER_C,
        photometric: T.Compose | None = None,
    ):
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; known: {', '.join(SAMPLINGS)}")
        if c < 1:
            raise ValueError(f"c must be >= 1, got {c}")
        self.crops = tuple(crops)
        self.sampling = sampling
        self.c = c
        self.photometric = photometric if photometric is not None else simclr_photometric()
        self.pipelines = [spec.photometric.compose() if spec.photometric else self.photometric for spec in self.crops]

    def domain(self, width: int, height: int, boxes: np.ndarray | None) -> tuple[float, float, float, float]:
        """The crop domain of one draw: a random enlarged region, or the whole image."""
        if self.sampling == "regions" and boxes is not None and len(boxes):
            k = int(torch.randint(len(boxes), ()).item())
            return tuple(enlarge_boxes(boxes[k : k + 1], self.c, width, height)[0])
        return 0.0, 0.0, float(width), float(height)

    def crop_boxes(self, width: int, height: int, boxes: np.ndarray | None) -> list[tuple[float, float, float, float]]:
        """The crop box of every view of one draw, in image coordinates (order of ``crops``)."""
        domain = self.domain(width, height, boxes)
        return [sample_crop(domain, spec.scale, spec.ratio) for spec in self.crops for _ in range(spec.n)]

    def __call__(self, image: Image.Image, boxes: np.ndarray | None = None) -> list[torch.Tensor]:
        views = [(spec.size, pipeline) for spec, pipeline in zip(self.crops, self.pipelines) for _ in range(spec.n)]
        crop_boxes = self.crop_boxes(image.width, image.height, boxes)
        return [
            pipeline(image.resize((size, size), Image.BILINEAR, box=box))
            for (size, pipeline), box in zip(views, crop_boxes)
        ]
