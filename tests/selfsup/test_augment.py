"""``selfsup.augment``: the photometric augmentations after the crop, PIL path (lightly's settings)."""

import math
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from selfsup.augment import Photometric

OFF = {"cj_prob": 0.0, "gray_prob": 0.0, "blur_prob": 0.0, "normalize": False}


def constant(rgb, size=8) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), rgb, np.uint8))


def augmented(p: Photometric, image: Image.Image, draws: int) -> torch.Tensor:
    """(draws, 3, h, w): ``draws`` passes of ``image`` through ``p``'s PIL pipeline."""
    pipeline = p.compose()
    return torch.stack([pipeline(image) for _ in range(draws)])


def within_binomial(hits: int, n: int, p: float) -> bool:
    return abs(hits / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_solarisation_inverts_views_with_its_probability():
    """Constant 200: a solarised view is 55 everywhere, the others stay 200; the fraction ~ p."""
    torch.manual_seed(0)
    for prob in (0.0, 0.3):
        views = augmented(Photometric(**OFF, solarize_prob=prob), constant(200), 800) * 255
        inverted = (views - 55).abs().amax((1, 2, 3)) < 1e-3
        kept = (views - 200).abs().amax((1, 2, 3)) < 1e-3
        assert (inverted ^ kept).all()
        assert within_binomial(int(inverted.sum()), inverted.numel(), prob), (prob, inverted.float().mean())


def test_solarisation_threshold_and_position_are_lightlys():
    """PIL inverts values >= 128 (128 -> 127, 127 stays); lightly solarises after the grayscale:
    (200, 100, 50) grays to 124, below the threshold (solarising first would give 81)."""
    torch.manual_seed(0)
    always = Photometric(**OFF, solarize_prob=1.0)
    for value, expected in ((128, 127), (127, 127), (255, 0), (0, 0)):
        views = augmented(always, constant(value), 6)
        assert torch.equal(views * 255, torch.full_like(views, expected)), value
    views = augmented(replace(always, gray_prob=1.0), constant((200, 100, 50)), 6)
    assert torch.equal(views * 255, torch.full_like(views, 124))


def jitter_factors(views: torch.Tensor, rgb) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness and saturation factors of jittered views of a constant colour (no clipping):
    brightness scales the luma, saturation (which keeps the luma) scales R - G about it."""
    luma = torch.tensor([0.299, 0.587, 0.114])
    colour = torch.tensor(rgb, dtype=torch.float64) / 255
    mean = views.double().mean((-2, -1))  # (..., 3)
    brightness = (mean * luma).sum(-1) / (colour * luma.double()).sum()
    saturation = (mean[..., 0] - mean[..., 1]) / (brightness * (colour[0] - colour[1]))
    return brightness.flatten(), saturation.flatten()


def test_jitter_ranges_are_per_channel():
    """cj_bright 0.8 and cj_sat 0.2 (DINO-like): brightness factors span [0.2, 1.8], saturation
    factors only [0.8, 1.2] (with SimCLR's cj_sat 0.8 they would span [0.2, 1.8] too)."""
    torch.manual_seed(0)
    rgb = (100, 60, 60)
    p = Photometric(**{**OFF, "cj_prob": 1.0}, cj_bright=0.8, cj_contrast=0.0, cj_sat=0.2, cj_hue=0.0)
    brightness, saturation = jitter_factors(augmented(p, constant(rgb), 1000), rgb)
    assert brightness.min() < 0.3 and brightness.max() > 1.7
    saturation = saturation[brightness > 0.8]  # R - G >= 32 levels: quantisation below 3 %
    assert 0.75 < saturation.min() < 0.85 and 1.15 < saturation.max() < 1.25, (saturation.min(), saturation.max())


def test_normalisation_is_imagenets_and_can_be_switched_off():
    """A constant grey view, no random step: normalised with ImageNet's mean and std (lightly's
    ``IMAGENET_NORMALIZE``), or left in [0, 1] with ``normalize=False``."""
    from lightly.transforms.utils import IMAGENET_NORMALIZE

    settings = {k: v for k, v in OFF.items() if k != "normalize"}
    raw = augmented(Photometric(**settings, hflip_prob=0.0, normalize=False), constant(128), 1)[0]
    assert torch.equal(raw, torch.full_like(raw, 128 / 255))
    normalised = augmented(Photometric(**settings, hflip_prob=0.0), constant(128), 1)[0]
    mean, std = torch.tensor(IMAGENET_NORMALIZE["mean"]), torch.tensor(IMAGENET_NORMALIZE["std"])
    assert torch.allclose(normalised.mean((1, 2)), (128 / 255 - mean) / std)
