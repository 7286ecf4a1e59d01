"""Ground-truth masker: the instance masks a dataset ships (synthetic scenes, Cityscapes, ADE20K).

An oracle the SAMCLR paper did not have: it tells how much of SAMCLR's gain a perfect masker
would bring. It reads ``samdata.instance_masks``'s format: one PNG of instance ids (0 = no instance)
per image under ``masks_root``, at the image's relative path with a ``.png`` suffix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from masking.maskers import Proposals
from samdata.instance_masks import mask_file, read_ids


class GroundTruthMasker:
    def __init__(self, masks_root: str | Path, ignore_ids: tuple[int, ...] = (0,)):
        self.masks_root = Path(masks_root)
        self.ignore_ids = tuple(ignore_ids)

    def __call__(self, image: np.ndarray, path: str) -> Proposals:
        file = mask_file(self.masks_root, path)
        if not file.is_file():
            raise FileNotFoundError(f"ground_truth masker: no instance mask {file} for image {path}")
        try:
            ids = read_ids(file)
        except ValueError as err:
            raise ValueError(f"ground_truth masker: {err}") from None
        if ids.shape != image.shape[:2]:
            raise ValueError(f"ground_truth masker: mask {file} is {ids.shape}, image {path} is {image.shape[:2]}")
        instance_ids = [i for i in np.unique(ids) if int(i) not in self.ignore_ids]
        masks = np.stack([ids == i for i in instance_ids]) if instance_ids else np.zeros((0, *ids.shape), bool)
        return Proposals(masks, np.ones(len(masks), np.float32))
