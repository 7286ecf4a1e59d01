"""Pretraining items for ``input: gpu``: an image's index and the crop boxes of its views, no pixels made.

The crop boxes come from the very sampler the CPU path uses (``masking.crops.CropSampler.crop_boxes``,
which ``selfsup.views.ViewSampler`` inherits): with ``sampling: regions`` one region is picked per
draw, its box is enlarged by ``c`` and clipped, and every view's random-resized crop lies inside it
(SAMCLR paper, Sec. 3). Only the coordinates are
those of the cached image: region boxes are rescaled to it before the draw. The pixels stay in the
cache: a batch of them is gathered on the device (``selfsup.data.image_cache.DeviceImages``), then
cut, resized and augmented there (``selfsup.data.device_views``). Workers ship a few numbers per
image, not images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from masking.crops import CropSampler
from selfsup.data.image_cache import DeviceImages, ImageCache

Item = tuple[torch.Tensor, int]


class CachedCrops(torch.utils.data.Dataset):
    """Item ``i``: (crop boxes (views, 4) float32 in the pixels of cached image ``i``, ``i``);
    the default collate makes a batch ((B, views, 4), (B,)).

    ``boxes_of`` maps a relative path to the image's region boxes in original pixels (a region
    store's ``boxes``); without it every image is sampled as a whole. Randomness comes from torch's
    generator, which the DataLoader seeds per worker, as on the CPU path.
    """

    def __init__(self, cache: ImageCache, sampler: CropSampler, boxes_of: Callable[[str], np.ndarray] | None = None):
        self.cache, self.sampler, self.boxes_of = cache, sampler, boxes_of

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> Item:
        height, width = (int(v) for v in self.cache.shapes[index])
        regions = None
        if self.boxes_of is not None:
            regions = self.cache.to_cache(index, self.boxes_of(self.cache.paths[index]))
        return torch.tensor(self.sampler.crop_boxes(width, height, regions), dtype=torch.float32), index


def device_batch(images: DeviceImages, boxes: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of ``CachedCrops`` items as ``DeviceViews`` takes it: (images (B, 3, H, W) uint8,
    their (height, width) (B, 2), crop boxes (B, views, 4)), all on the device."""
    pixels, sizes = images.batch(indices)
    return pixels, sizes, boxes.to(images.device, non_blocking=True)
