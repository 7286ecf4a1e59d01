"""Region logic of SAMCLR, pure numpy.

SAMCLR (Missaoui et al., "Contrastive pre-training on complex scenes using SAM for view sampling",
NeurIPS 2023 SSL workshop, Sec. 3) keeps the *coarsest* regions of an image: masks that lie mostly
inside a larger mask are dropped (reference code: more than 90 % of their pixels), and so are
regions smaller than ``min_area`` (paper: 1000 px). The bounding box of each kept region is then
enlarged by a factor ``c`` in height and width around its centre (paper: c = 1.3) and clipped to
the image; every view of an image is drawn inside one such box.

Boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends, so a box's width is ``x1 - x0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masking.rle import encode

PAPER_MIN_AREA = 1000
"""Smallest region kept, in pixels (SAMCLR paper, Sec. 4.1)."""
PAPER_C = 1.3
"""Box enlargement factor (SAMCLR paper, Sec. 4.1)."""
REFERENCE_CONTAINMENT = 0.9
"""A mask with more than this fraction of its pixels inside a larger mask is dropped (reference code)."""


@dataclass(frozen=True)
class Regions:
    """The kept regions of one image: boxes (K, 4) int32 xyxy, areas (K,) int64, scores (K,) float32,
    and optionally the masks themselves as run-length encodings (``masking.rle``; a masker's
    ``keep_masks``)."""

    boxes: np.ndarray
    areas: np.ndarray
    scores: np.ndarray
    rle: list[list[int]] | None = None

    def __post_init__(self) -> None:
        if self.boxes.shape != (len(self.areas), 4) or len(self.scores) != len(self.areas):
            raise ValueError(
                f"Regions: boxes {self.boxes.shape}, areas {self.areas.shape} and scores "
                f"{self.scores.shape} disagree"
            )
        if self.rle is not None and len(self.rle) != len(self.areas):
            raise ValueError(f"Regions: {len(self.rle)} masks for {len(self.areas)} regions")

    def subset(self, keep: np.ndarray) -> Regions:
        """The regions where the boolean ``keep`` is true."""
        rle = None if self.rle is None else [r for r, k in zip(self.rle, keep) if k]
        return Regions(self.boxes[keep], self.areas[keep], self.scores[keep], rle)

    def __len__(self) -> int:
        return len(self.areas)

    @classmethod
    def empty(cls) -> Regions:
        return cls(np.zeros((0, 4), np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32))


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight bounding boxes (N, 4) int32 xyxy of boolean masks (N, H, W); an empty mask gets zeros."""
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((len(masks), 4), np.int32)
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    for i in range(len(masks)):
        ys = np.flatnonzero(rows[i])
        xs = np.flatnonzero(cols[i])
        if len(ys):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def coarsest(masks: np.ndarray, containment: float = REFERENCE_CONTAINMENT) -> np.ndarray:
    """Indices of the coarsest masks, largest first.

    Masks are visited from the largest to the smallest; a mask is dropped when more than
    ``containment`` of its pixels lie inside one mask that was already kept.
    """
    masks = np.asarray(masks, dtype=bool)
    if len(masks) == 0:
        return np.zeros(0, np.int64)
    flat = masks.reshape(len(masks), -1)
    areas = flat.sum(axis=1)  # (N,) pixel counts
    order = np.argsort(-areas, kind="stable")
    kept: list[int] = []
    for i in order:
        if areas[i] == 0:
            continue
        if kept:
            inside = (flat[kept] & flat[i]).sum(axis=1) / areas[i]
            if (inside > containment).any():
                continue
        kept.append(int(i))
    return np.asarray(kept, np.int64)


def select_regions(
    masks: np.ndarray,
    scores: np.ndarray | None = None,
    min_area: int = PAPER_MIN_AREA,
    containment: float = REFERENCE_CONTAINMENT,
    keep_masks: bool = False,
) -> Regions:
    """Keep the coarsest masks of at least ``min_area`` pixels and return their boxes (and, with
    ``keep_masks``, the masks as run-length encodings).

    Small masks are removed first, so a small fragment never hides inside a large kept mask it
    is not part of, and a large mask is never dropped because of something below the size limit.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"select_regions: masks must be (N, H, W), got shape {masks.shape}")
    scores = np.ones(len(masks), np.float32) if scores is None else np.asarray(scores, np.float32)
    areas = masks.sum(axis=(1, 2))
    big = np.flatnonzero(areas >= min_area)
    keep = big[coarsest(masks[big], containment)]
    rle = encode(masks[keep]) if keep_masks else None
    return Regions(mask_boxes(masks[keep]), areas[keep].astype(np.int64), scores[keep], rle)


def enlarge_boxes(boxes: np.ndarray, c: float, width: int, height: int) -> np.ndarray:
    """Scale boxes (K, 4) by ``c`` in width and height around their centres, clipped to the image.

    Returns float64 boxes: crops are computed from them directly, without rounding twice.
    """
    if c < 1:
        raise ValueError(f"enlarge_boxes: c must be >= 1, got {c}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    half_w = (boxes[:, 2] - boxes[:, 0]) * c / 2
    half_h = (boxes[:, 3] - boxes[:, 1]) * c / 2
    out = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
