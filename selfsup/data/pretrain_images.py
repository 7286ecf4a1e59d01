"""Unlabelled image folders for pretraining.

Any folder tree of images is a pretraining set: files are found recursively
(``samdata.image_files.list_images``) and identified by their path relative to the root, the key the
region store uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from samdata.image_files import DECODE_ERRORS, IMAGE_SUFFIXES, list_images, load_rgb

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
            raise FileNotFoundError(f"image folder {self.root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
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
            except DECODE_ERRORS as err:
                warnings.warn(f"skipping unreadable image {self.root / path}: {err}", stacklevel=2)
                continue
            boxes = self.boxes_of(path) if self.boxes_of is not None else None
            return self.sampler(image, boxes), index
        raise RuntimeError(f"image folder {self.root}: no image could be read")
