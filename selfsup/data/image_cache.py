"""Every pretraining image decoded and resized once, kept in memory as uint8 (``input: gpu``).

Decoding and resizing a photo is most of the CPU cost of a training view (``bench/train_step.py``);
the cache pays it once per run, when the run starts. Each image is resized with PIL's antialiased
bicubic filter so that its short side is ``short_side`` px (an image already smaller is kept as it
is, never upscaled) and stored channels-first (3, h, w), ready to be batched for the device. One
numpy array per image: DataLoader workers forked from the training process read them without
copying (with the ``spawn`` start method each worker would get its own copy).

Memory is 3 bytes per cached pixel: ImageNette (9,469 photos, about 4:3) at a short side of 192 px
takes ~1.4 GB, ADE20K (20,210) ~3 GB, Cityscapes (2,975 frames, 2:1) ~0.7 GB.

Region boxes in a region store are in original-image pixels; ``to_cache`` rescales them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from selfsup.data.images import load_rgb


def cached_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) of an image once cached: short side ``short_side``, aspect kept, never larger."""
    short = min(width, height)
    if short <= short_side:
        return width, height
    scale = short_side / short
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_resized(path: str | Path, short_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as a (3, h, w) uint8 array at its cached size, and its original (width, height)."""
    image = load_rgb(path)
    size = cached_size(image.width, image.height, short_side)
    original = (image.width, image.height)
    if size != original:
        image = image.resize(size, Image.BICUBIC)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)), original


@dataclass
class ImageCache:
    """``images[i]``: image ``paths[i]`` as (3, h, w) uint8; ``original_sizes[i]``: its (width, height)
    in the file, the coordinates of its region boxes."""

    paths: list[str]
    images: list[np.ndarray]
    original_sizes: list[tuple[int, int]]
    short_side: int

    @classmethod
    def build(cls, root: str | Path, paths: Sequence[str], short_side: int, threads: int = 1) -> ImageCache:
        """Decode and resize every image (threads: PIL releases the GIL while decoding and resizing).

        An unreadable image is left out with a warning, as the CPU path skips it."""
        root = Path(root)

        def load(rel: str):
            try:
                return decode_resized(root / rel, short_side)
            except (OSError, ValueError, SyntaxError) as err:  # what PIL raises for broken files
                return err

        with ThreadPoolExecutor(max(1, threads)) as pool:
            loaded = list(pool.map(load, paths))
        kept = [(rel, item) for rel, item in zip(paths, loaded) if not isinstance(item, Exception)]
        broken = [(rel, item) for rel, item in zip(paths, loaded) if isinstance(item, Exception)]
        if broken:
            rel, err = broken[0]
            warnings.warn(f"skipping {len(broken)} unreadable image(s) under {root}, e.g. {rel}: {err}", stacklevel=2)
        if not kept:
            raise RuntimeError(f"image folder {root}: no image could be read")
        return cls([rel for rel, _ in kept], [item[0] for _, item in kept], [item[1] for _, item in kept], short_side)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def nbytes(self) -> int:
        return sum(image.nbytes for image in self.images)

    def to_cache(self, index: int, boxes: np.ndarray) -> np.ndarray:
        """Boxes (K, 4) in the original image's pixels as float boxes in the cached image's pixels."""
        width, height = self.original_sizes[index]
        _, h, w = self.images[index].shape
        scale = np.array([w / width, h / height, w / width, h / height])
        return np.asarray(boxes, np.float64).reshape(-1, 4) * scale
