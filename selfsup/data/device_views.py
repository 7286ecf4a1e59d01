"""The sampler's views made in batches on the training device (``input: gpu``).

The same law, view by view, as the CPU path (``selfsup.views.ViewSampler`` with
``selfsup.augment.Photometric``, whose defaults are lightly's ``SimCLRTransform``), with each
``ViewSpec``'s own ``Photometric`` settings, in the same order:

1. crop + resize from the cached uint8 image with PIL's antialiased bilinear filter (a triangle as
   wide as an output pixel when shrinking, plain bilinear when enlarging; the same weights as
   ``Image.resize(box=...)`` and torch's ``interpolate(antialias=True)``), as two batched matrix
   products per crop size: exact where ``roi_align``'s box average is visibly sharper (measured:
   +15 % mean gradient at a 4x shrink);
2. horizontal flip, p = ``hflip_prob``;
3. colour jitter with p = ``cj_prob``: brightness, contrast and saturation factors uniform in
   [max(0, 1 - j), 1 + j] with j = ``cj_bright``, ``cj_contrast``, ``cj_sat`` times s, hue shift
   uniform in [-``cj_hue`` s, ``cj_hue`` s] (s = ``cj_strength``; SimCLR: 0.8/0.8/0.8/0.2), applied
   in a random order drawn per view, as ``torchvision.transforms.ColorJitter`` does; the four
   steps are ``kornia.enhance``'s torchvision formulas (multiply; blend with the grayscale mean;
   blend with the grayscale; hue shift in HSV);
4. grayscale, p = ``gray_prob`` (ITU-R 601 luma, as PIL's ``convert("L")``);
5. Gaussian blur with p = ``blur_prob``, sigma uniform in ``sigmas`` px (lightly: PIL's
   ``GaussianBlur(radius=sigma)``; here ``kornia.filters.gaussian_blur2d`` with a kernel reaching
   3 sigma of the largest sigma, replicated borders);
6. solarisation with p = ``solarize_prob`` (lightly's ``RandomSolarization``, see ``solarize``);
7. ImageNet normalisation.

Not ``kornia.augmentation.ColorJitter``: it draws one order for the whole batch (its generator's
``randperm(4)``) and takes its parameters from the global RNG.

Every random parameter is drawn on the host, a few numbers per view, from the ``torch.Generator``
the caller passes (training seeds it from (seed, epoch)): the views do not depend on the device
and a resumed epoch repeats exactly. Per spec, in the order of the specs: 9 uniforms and 4 for the
jitter order per view, then one more per view only if the spec solarises (so settings without
solarisation, SimCLR's, draw exactly what they drew before it existed). The parameters reach the
device by non-blocking copies; the host never waits for the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from kornia.color import rgb_to_grayscale
from kornia.enhance import (
    adjust_brightness_accumulative,
    adjust_contrast_with_mean_subtraction,
    adjust_hue,
    adjust_saturation_with_gray_subtraction,
)
from kornia.filters import gaussian_blur2d

from masking.crops import CropSpec
from selfsup.augment import IMAGENET_MEAN, IMAGENET_STD, Photometric
from selfsup.views import own_photometric


def _hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    return adjust_hue(x, turns * (2 * math.pi))  # torchvision: fractions of a turn; kornia: radians


def bilinear_weights(start: torch.Tensor, end: torch.Tensor, out: int, extent: torch.Tensor, length: int) -> torch.Tensor:
    """PIL's antialiased bilinear resampling weights along one axis, one row per output pixel.

    ``start``/``end`` (...): the crop along the axis in input pixels; ``extent`` (...): the image's
    length (pixels beyond it are padding and get no weight); ``length``: the padded length.
    Returns (..., out, length), rows summing to 1. As PIL's ``ImagingResample``: output pixel ``i``
    is centred at ``start + (i + 0.5) * scale`` and weighs input pixel centres with a triangle of
    half-width ``max(scale, 1)``.
    """
    scale = (end - start) / out
    support = scale.clamp(min=1)[..., None, None]
    steps = torch.arange(out, device=start.device, dtype=start.dtype) + 0.5
    centres = start[..., None, None] + steps[:, None] * scale[..., None, None]
    positions = torch.arange(length, device=start.device, dtype=start.dtype)
    weights = (1 - (positions + 0.5 - centres).abs() / support).clamp_(min=0)
    weights = weights * (positions < extent[..., None, None])
    return weights / weights.sum(-1, keepdim=True)


def resized_crops(images: torch.Tensor, sizes: torch.Tensor, boxes: torch.Tensor, out: int) -> torch.Tensor:
    """Crops ``boxes`` (B, n, 4) of ``images`` (B, 3, H, W), each resized to out x out: (B * n, 3, out, out).

    Separable: the columns of every crop of an image in one matrix product, then the rows of each crop.
    """
    batch, _, height, width = images.shape
    n = boxes.shape[1]
    wx = bilinear_weights(boxes[..., 0], boxes[..., 2], out, sizes[:, 1:2], width)  # (B, n, out, W)
    wy = bilinear_weights(boxes[..., 1], boxes[..., 3], out, sizes[:, 0:1], height)  # (B, n, out, H)
    cols = images.reshape(batch, 3 * height, width) @ wx.reshape(batch, n * out, width).transpose(1, 2)
    cols = cols.view(batch, 3, height, n, out).permute(0, 3, 2, 1, 4).reshape(batch * n, height, 3 * out)
    rows = wy.reshape(batch * n, out, height) @ cols  # (B * n, out, 3 * out)
    return rows.view(batch * n, out, 3, out).permute(0, 2, 1, 3).contiguous()


JITTER_STEPS = (adjust_brightness_accumulative, adjust_contrast_with_mean_subtraction, adjust_saturation_with_gray_subtraction, _hue)
SOLARIZE_THRESHOLD = 127.5 / 255


def solarize(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.solarize(threshold=128)`` on [0, 1] floats: x -> 1 - x where x >= 127.5 / 255.

    PIL inverts uint8 values v >= 128 to 255 - v, i.e. x = v / 255 >= 128 / 255 to 1 - x. The
    threshold here is halfway between 127 / 255 and 128 / 255: on every uint8 value k / 255 the
    result is PIL's, and a float that stands for 128 but lands a rounding error below 128 / 255
    (the resampling's weights sum to 1 only up to float error) is still inverted. A value between
    two uint8 levels (after jitter or blur, which PIL would have quantised) is inverted iff it
    rounds to 128 or more.
    """
    return torch.where(x >= SOLARIZE_THRESHOLD, 1 - x, x)


class _Settings:
    """One spec's ``Photometric`` with its jitter bounds and blur kernel, checked once."""

    def __init__(self, p: Photometric):
        brightness, contrast, saturation, hue = p.jitter
        if hue > 0.5:
            raise ValueError(
                f"cj_strength {p.cj_strength} x cj_hue {p.cj_hue} gives a hue jitter above 0.5 (torchvision's limit)"
            )
        self.p = p
        self.jitter_low = torch.tensor(
            [max(0.0, 1 - brightness), max(0.0, 1 - contrast), max(0.0, 1 - saturation), -hue], dtype=torch.float64
        )
        self.jitter_high = torch.tensor([1 + brightness, 1 + contrast, 1 + saturation, hue], dtype=torch.float64)
        self.blur_kernel = 2 * math.ceil(3 * p.sigmas[1]) + 1


class DeviceViews:
    """``(images, sizes, boxes, generator) -> views``: images (B, 3, H, W) uint8 (zero-padded),
    their sizes and crop boxes (B, V, 4) (x0, y0, x1, y1) in their pixels, all on the training
    device; views as the CPU path returns them: one (B, 3, size, size) float tensor per view, in
    the order of ``crops``.

    ``photometric``: the settings of specs without their own (``ViewSpec.photometric``; a plain
    ``CropSpec`` has none), as on the CPU path (``selfsup.views.ViewSampler``).
    """

    def __init__(self, crops: Sequence[CropSpec], photometric: Photometric = Photometric()):
        self.crops = tuple(crops)
        self.settings = [_Settings(own_photometric(spec) or photometric) for spec in self.crops]
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(
        self, images: torch.Tensor, sizes: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
    ) -> list[torch.Tensor]:
        """``sizes`` (B, 2): each image's (height, width) inside the padded batch."""
        batch = len(images)
        pixels = images.float()
        sizes = sizes.to(pixels.dtype)
        boxes = boxes.to(pixels.dtype)
        views: list[torch.Tensor] = []
        first = 0
        for spec, settings in zip(self.crops, self.settings):
            crops = resized_crops(pixels, sizes, boxes[:, first : first + spec.n], spec.size)
            crops = self.photometric(crops.div_(255).clamp_(0, 1), generator, settings)
            views.extend(crops.view(batch, spec.n, 3, spec.size, spec.size).unbind(1))
            first += spec.n
        return views

    def photometric(self, x: torch.Tensor, generator: torch.Generator, settings: _Settings) -> torch.Tensor:
        """Flip, colour jitter, grayscale, blur, solarisation and normalisation of (N, 3, h, w) views in [0, 1]."""
        n, p = len(x), settings.p
        u = torch.rand(n, 9, generator=generator, dtype=torch.float64)
        order = torch.rand(n, 4, generator=generator).argsort(dim=1)  # a uniform random order per view
        jitter = u[:, 1] < p.cj_prob
        factors = settings.jitter_low + (settings.jitter_high - settings.jitter_low) * u[:, 2:6]
        sigma = p.sigmas[0] + (p.sigmas[1] - p.sigmas[0]) * u[:, 8]
        # which views each step touches, in the order the steps run
        steps: list[tuple[str, int, torch.Tensor]] = [("flip", -1, u[:, 0] < p.hflip_prob)]
        for position in range(4):
            steps += [("jitter", j, jitter & (order[:, position] == j)) for j in range(4)]
        steps += [("gray", -1, u[:, 6] < p.gray_prob), ("blur", -1, u[:, 7] < p.blur_prob)]
        if p.solarize_prob > 0:
            steps.append(("solarize", -1, torch.rand(n, generator=generator, dtype=torch.float64) < p.solarize_prob))
        indices = [torch.nonzero(mask).flatten() for _, _, mask in steps]
        on_device = torch.cat(indices).to(x.device, non_blocking=True).split([len(i) for i in indices])
        device_factors = factors.to(x.dtype).to(x.device, non_blocking=True)
        for (name, j, _), host_index, index in zip(steps, indices, on_device):
            if not len(host_index):
                continue
            chosen = x.index_select(0, index)
            if name == "flip":
                chosen = chosen.flip(-1)
            elif name == "jitter":
                chosen = JITTER_STEPS[j](chosen, device_factors.index_select(0, index)[:, j])
            elif name == "gray":
                chosen = rgb_to_grayscale(chosen).expand(-1, 3, -1, -1)
            elif name == "blur":
                sig = sigma[host_index].to(x.dtype)[:, None].expand(-1, 2).contiguous()
                chosen = gaussian_blur2d(chosen, settings.blur_kernel, sig, border_type="replicate")
            else:
                chosen = solarize(chosen)
            x.index_copy_(0, index, chosen)
        if p.normalize:
            mean, std = self._normalisation(x.device)
            x = (x - mean) / std
        return x

    def _normalisation(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:
            self._stats[device] = (
                torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).to(device),
                torch.tensor(IMAGENET_STD).view(1, 3, 1, 1).to(device),
            )
        return self._stats[device]
