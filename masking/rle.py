"""Masks as run-length encodings: COCO's uncompressed RLE, the format SAM's generator writes.

A mask (H, W) is read in column-major (Fortran) order and stored as the lengths of its alternating
runs, the first run being of zeros (possibly of length 0): exactly ``counts`` of an uncompressed
COCO RLE (``pycocotools.mask.frPyObjects``) and of segment-anything's ``mask_to_rle_pytorch``, whose
``rle_to_mask`` decodes ours (``tests/masking/test_rle.py``). Written here in numpy rather than
imported: segment-anything-hq's ``utils.amg`` loads its whole model package (timm) on import and
encodes one mask at a time in Python, and pycocotools would be a compiled dependency for two loops.
"""

from __future__ import annotations

import numpy as np


def encode(masks: np.ndarray) -> list[list[int]]:
    """Counts of each of ``masks`` (K, H, W) bool."""
    masks = np.asarray(masks, dtype=bool)
    out = []
    for mask in masks:
        flat = mask.T.reshape(-1)  # column-major
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        edges = np.concatenate([[0], change, [flat.size]])
        runs = np.diff(edges).tolist()
        out.append(([0] + runs) if flat.size and flat[0] else runs)
    return out


def decode(counts: list[list[int]], height: int, width: int) -> np.ndarray:
    """(K, height, width) bool masks from their counts; counts that do not add up to the image's
    pixels are a ValueError (a store written for another image size)."""
    masks = np.zeros((len(counts), height * width), dtype=bool)
    for mask, runs in zip(masks, counts):
        runs = np.asarray(runs, np.int64)
        if runs.sum() != height * width or (runs < 0).any():
            raise ValueError(f"run lengths add up to {int(runs.sum())} pixels, not {height}x{width}")
        ends = np.cumsum(runs)
        starts = ends - runs
        for start, end in zip(starts[1::2], ends[1::2]):  # odd runs are ones
            mask[start:end] = True
    return masks.reshape(len(counts), width, height).transpose(0, 2, 1)
