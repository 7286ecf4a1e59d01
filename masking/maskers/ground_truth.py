"""Ground-truth masker: the instance masks a dataset ships (synthetic scenes, Cityscapes, ADE20K).

An oracle the SAMCLR paper did not have: it tells how much of SAMCLR's gain a perfect masker
would bring. Instance masks are PNG images of instance ids (0 = no instance) stored under
``masks_root`` at the image's relative path with a ``.png`` suffix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from masking.maskers import Proposals


class GroundTruthMasker:
    def __init__(self, masks_root: str | Path, ignore_ids: tuple[int, ...] = (0,)):
        self.masks_root = Path(masks_root)
        self.ignore_ids = tuple(ignore_ids)

    def mask_path(self, path: str) -> Path:
        return (self.masks_root / path).with_suffix(".png")

    def __call__(self, image: np.ndarray, path: str) -> Proposals:
        mask_file = self.mask_path(path)
        if not mask_file.is_file():
            raise FileNotFoundError(f"ground_truth masker: no instance mask {mask_file} for image {path}")
        ids = np.asarray(Image.open(mask_file))
        if ids.shape[:2] != image.shape[:2]:
            raise ValueError(
                f"ground_truth masker: mask {mask_file} is {ids.shape[:2]}, image {path} is {image.shape[:2]}"
            )
        if ids.ndim != 2:
            raise ValueError(f"ground_truth masker: {mask_file} must be a single-channel id image, got {ids.shape}")
        instance_ids = [i for i in np.unique(ids) if int(i) not in self.ignore_ids]
        masks = np.stack([ids == i for i in instance_ids]) if instance_ids else np.zeros((0, *ids.shape), bool)
        return Proposals(masks, np.ones(len(masks), np.float32))
