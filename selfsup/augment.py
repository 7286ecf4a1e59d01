"""Photometric augmentations (what happens to a view after its crop) and ImageNet normalisation.

Defaults are SimCLR's with lightly's default parameters (``lightly.transforms.SimCLRTransform``,
lightly 1.6: colour jitter 0.8/0.8/0.8/0.2 applied with p = 0.8, grayscale p = 0.2, Gaussian blur
p = 0.5 with sigma in [0.1, 2], horizontal flip p = 0.5, ImageNet normalisation); ``Photometric``
also carries the settings of the other methods' views (``selfsup.views``: BYOL, DINO, SwAV). The
one set of settings feeds both input paths: PIL here (``compose``, on CPU workers) and
``selfsup.data.device_views.DeviceViews`` on the training device. Every draw comes from torch's
generator, which DataLoader seeds per worker. The crop itself is geometry (``masking.crops``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

from masking.crops import uniform

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's per-channel mean (torchvision's and lightly's ``IMAGENET_NORMALIZE``)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's per-channel standard deviation (torchvision's and lightly's ``IMAGENET_NORMALIZE``)."""


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
            return img.filter(ImageFilter.GaussianBlur(radius=uniform(*self.sigmas)))
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


def simclr_photometric(**settings) -> T.Compose:
    """``Photometric(**settings).compose()``: SimCLR's augmentations after the crop."""
    return Photometric(**settings).compose()
