"""Pretraining items for ``input: gpu``: a cached image and the crop boxes of its views, no pixels made.

The crop boxes come from the very sampler the CPU path uses (``ViewSampler.crop_boxes``): with
``sampling: regions`` one region is picked per draw, its box is enlarged by ``c`` and clipped, and
every view's random-resized crop lies inside it (SAMCLR paper, Sec. 3). Only the coordinates are
those of the cached image: region boxes are rescaled to it before the draw. Cutting, resizing and
augmenting happen later on the device (``selfsup.data.device_views``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from masking.sampler import ViewSampler
from selfsup.data.image_cache import ImageCache

Item = tuple[tuple[torch.Tensor, torch.Tensor], int]


class CachedCrops(torch.utils.data.Dataset):
    """Item ``i``: ((image (3, h, w) uint8, crop boxes (views, 4) float32 in its pixels), i).

    ``boxes_of`` maps a relative path to the image's region boxes in original pixels (a region
    store's ``boxes``); without it every image is sampled as a whole. Randomness comes from torch's
    generator, which the DataLoader seeds per worker, as on the CPU path.
    """

    def __init__(self, cache: ImageCache, sampler: ViewSampler, boxes_of: Callable[[str], np.ndarray] | None = None):
        self.cache, self.sampler, self.boxes_of = cache, sampler, boxes_of

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> Item:
        image = self.cache.images[index]
        _, height, width = image.shape
        regions = None
        if self.boxes_of is not None:
            regions = self.cache.to_cache(index, self.boxes_of(self.cache.paths[index]))
        boxes = torch.tensor(self.sampler.crop_boxes(width, height, regions), dtype=torch.float32)
        return (torch.from_numpy(image), boxes), index


def collate_padded(items: list[Item]) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A batch: ((images zero-padded at the bottom and right to one (B, 3, H, W) uint8 tensor,
    their (height, width) (B, 2), crop boxes (B, views, 4)), indices (B,))."""
    height = max(image.shape[1] for (image, _), _ in items)
    width = max(image.shape[2] for (image, _), _ in items)
    batch = torch.zeros((len(items), 3, height, width), dtype=torch.uint8)
    for row, ((image, _), _) in zip(batch, items):
        row[:, : image.shape[1], : image.shape[2]] = image
    sizes = torch.tensor([image.shape[1:] for (image, _), _ in items])
    boxes = torch.stack([b for (_, b), _ in items])
    return (batch, sizes, boxes), torch.tensor([i for _, i in items])
