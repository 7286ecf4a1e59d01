"""Unlabelled image folders for pretraining.

Any folder tree of images is a pretraining set: files are found recursively and identified by
their path relative to the root, the key the region store uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def list_images(root: str | Path) -> list[str]:
    """Relative paths (POSIX, sorted) of every image file under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB with its EXIF orientation applied."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale PNG: 0..65535 -> 0..255
            arr = np.rint(np.asarray(img, dtype=np.float64) / 257.0).clip(0, 255)
            return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
        return img.convert("RGB")


class PretrainImages(torch.utils.data.Dataset):
    """Images of a folder passed through a view sampler: item ``i`` is (list of views, i).

    ``boxes_of`` maps a relative path to the image's region boxes (a region store's ``boxes``);
    without it every image is sampled as a whole.
    """

    def __init__(
        self,
        root: str | Path,
        sampler: Callable[[Image.Image, np.ndarray | None], list[torch.Tensor]],
        boxes_of: Callable[[str], np.ndarray] | None = None,
        paths: Sequence[str] | None = None,
    ):
        self.root = Path(root)
        self.paths = list(paths) if paths is not None else list_images(self.root)
        if not self.paths:
            raise FileNotFoundError(f"image folder {self.root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.sampler = sampler
        self.boxes_of = boxes_of

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[list[torch.Tensor], int]:
        """Views of image ``index``; an unreadable image is skipped (with a warning) for the next one."""
        for offset in range(len(self.paths)):
            path = self.paths[(index + offset) % len(self.paths)]
            try:
                image = load_rgb(self.root / path)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:  # what PIL raises for broken files
                warnings.warn(f"skipping unreadable image {self.root / path}: {err}", stacklevel=2)
                continue
            boxes = self.boxes_of(path) if self.boxes_of is not None else None
            return self.sampler(image, boxes), index
        raise RuntimeError(f"image folder {self.root}: no image could be read")
