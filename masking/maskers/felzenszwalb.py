"""Felzenszwalb masker: object proposals from a hierarchy of merged Felzenszwalb segments.

Why not the raw segments: measured on the built-in synthetic scenes, plain
``skimage.segmentation.felzenszwalb`` boxes (scale 300, every segment a region) found only 53 % of
the objects with about 8 regions per image, most of them texture patches (a single stripe of a
striped object, a piece of background), and pretraining on them hurt. (``bench/maskers.py``'s
raw-segment baseline, scale 300 with skimage's default sigma 0.8 and min_size 20, finds 77 % at
7.3 regions per image; either way the regions are mostly patches.) A region masker for SAMCLR must
propose *objects*. This one does it in the spirit of selective search (Uijlings et al., "Selective
Search for Object Recognition", IJCV 2013), with an objectness score in place of selective
search's random ranking:

1. **Over-segmentation.** Felzenszwalb-Huttenlocher graph segmentation of the image (large images
   are first brought down to ``max_pixels``; ``scale`` and ``min_size`` are relative to the image
   area, so the same parameters serve a 128x128 scene and a 500x375 photo).
2. **Hierarchical grouping.** Adjacent segments are merged greedily, the most similar pair first,
   until one region is left; every merged region is a candidate. Similarity mixes colour-histogram
   intersection (Lab), texture-histogram intersection (gradient orientation x magnitude), a size
   term (small regions merge first), a fill term (merges that fill their joint box) and a
   boundary-share term (how much of the smaller region's perimeter the two share). Texture, fill
   and shared boundary are what glue the two colours of a striped object into one region before it
   leaks into the background. Several strategies (weightings of these terms) are run and their
   candidates pooled, as in selective search.
3. **Objectness score** of each candidate, from the base segmentation in a few sparse products:
   colour contrast with its surroundings (joint Lab histogram of the region vs that of the
   segments along its outer boundary, so a striped object is compared with what surrounds it, not
   stripe with stripe), mean colour step across its outer boundary, compactness (fill of its box and perimeter vs
   area), a penalty for touching the image border (background touches it, objects mostly do not)
   and a mild preference for larger regions.
4. **Selection.** Candidates are taken best first, skipping near-duplicates (box IoU above
   ``nms_iou``) and regions overlapping an already chosen one by more than ``max_overlap`` of the
   smaller of the two (so no chosen region is later dropped as "inside a larger one" by the
   coarsest-region selection), until ``max_regions`` are chosen or scores fall below ``min_score``
   times the best.

On ``bench/maskers.py`` (200 scenes of ``SyntheticConfig()``, seed 0, ``regions_of`` with
min_area 200): 98 % of the objects found (box IoU >= 0.5) at 5.1 kept regions per image, about
0.05 s per 128x128 scene and 0.1-0.15 s per 500x375 photo on one core. No shape prior: every cue
above is generic (contrast, compactness, border contact, size).

View-pair purity (``masking.purity``: P(both SimCLR views drawn in a region show the same object))
says what recall does not: on 64 px drawn-shape scenes of ``experiments/fashion_scenes.yaml``'s
geometry (held-out seed 1, 200 scenes, min_area 100, views of area [0.2, 1], c = 1.3) the default
selection (4.3 regions per image, recall 0.95) gives 0.79, no better than whole-image views (0.80;
ground truth 0.997), because half its regions are not objects. ``min_score=0.7`` (keep only
candidates scoring at least 0.7 x the image's best; label-free) gives 0.93 at 2.2 regions per image
(recall 0.83), and 0.99 vs 0.81 on 128 px scenes of ``SyntheticConfig()`` (seed 2, 100 scenes, min
area 200). The default stays 0: a store's fingerprint holds the parameters a sweep file gives, not
the defaults, so a changed default would silently reuse stores computed with the old one; a sweep
asks for it (``params: {min_score: 0.7}``, as ``experiments/fashion_scenes.yaml``'s
``felzenszwalb_pure`` does).

Pure numpy/scipy/scikit-image; no pixel loops (Python loops run over segments and merges only).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage, sparse
from skimage.color import rgb2lab
from skimage.segmentation import felzenszwalb

from masking.maskers import Proposals

REFERENCE_AREA = 128 * 128
"""Image area at which ``scale`` is given (the synthetic scenes' size); scaled with the area."""
MIN_SEGMENT_PIXELS = 8
"""Floor of the base segments' size, so that a tiny or noisy image does not explode into single pixels."""

DEFAULT_STRATEGIES: tuple[tuple[float, float, float, float, float], ...] = (
    # weights of (colour, texture, size, fill, shared boundary)
    (1.0, 0.0, 1.0, 1.0, 1.0),
    (0.0, 1.0, 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, 0.0),
)


@dataclass
class _Segments:
    """The base over-segmentation and per-segment statistics."""

    labels: np.ndarray  # (h, w) int, 0..n-1
    n: int
    area: np.ndarray  # (n,) float
    bbox: np.ndarray  # (n, 4) float x0 y0 x1 y1 (exclusive ends)
    colour: np.ndarray  # (n, dc) per-segment colour histograms, each channel sums to 1
    joint: np.ndarray  # (n, jb**3) per-segment joint colour histograms, sum 1
    texture: np.ndarray  # (n, dt) per-segment texture histograms, sum 1
    pair_i: np.ndarray  # adjacent pairs i < j
    pair_j: np.ndarray
    shared: np.ndarray  # boundary length (pixel pairs) of each adjacent pair
    edge: np.ndarray  # summed colour difference across the boundary of each pair
    border: np.ndarray  # (n,) pixels on the image border
    perimeter: np.ndarray  # (n,) boundary pixel pairs + border pixels


class FelzenszwalbMasker:
    """Object proposals: Felzenszwalb segments, hierarchically merged, ranked by objectness.

    Parameters (sizes relative to the image area, so they do not depend on the resolution):

    scale: Felzenszwalb's ``scale`` for a 128x128 image; multiplied by area / 128**2.
    sigma: Gaussian pre-smoothing of the over-segmentation (pixels of the working image).
    min_size: smallest base segment, as a fraction of the image area (at least 8 pixels).
    max_pixels: larger images are downscaled to about this many pixels for segmentation.
    max_regions: most masks returned.
    min_region: smallest candidate kept, fraction of the image area.
    max_region: largest candidate kept, fraction of the image area.
    nms_iou: a candidate whose box has IoU above this with a chosen box is dropped.
    max_overlap: a candidate sharing more than this fraction of the smaller mask with a chosen
        mask is dropped.
    min_score: candidates scoring below ``min_score`` x the best score are not returned.
    colour_bins: histogram bins per Lab channel; texture uses 8 orientations x 3 magnitudes.
    strategies: merging strategies, each a tuple of weights of (colour, texture, size, fill,
        shared boundary) similarity.
    border_penalty: exponent of (1 - fraction of the perimeter on the image border).
    size_exponent, fill_exponent, roundness_exponent: exponents of the region's area fraction, of
        its box fill and of its roundness 4 pi area / perimeter**2 in the score.
    edge_scale: boundary colour step (Lab units) at which the edge cue is half saturated.
    joint_bins: bins per channel of the joint Lab histogram of the colour-contrast cue.

    The score is (colour contrast + edge cue) / 2 x fill**fill_exponent x
    roundness**roundness_exponent x (1 - border fraction)**border_penalty x area**size_exponent.
    """

    def __init__(
        self,
        scale: float = 60.0,
        sigma: float = 0.6,
        min_size: float = 0.001,
        max_pixels: int = 256 * 256,
        max_regions: int = 6,
        min_region: float = 0.01,
        max_region: float = 0.6,
        nms_iou: float = 0.5,
        max_overlap: float = 0.5,
        min_score: float = 0.0,
        colour_bins: int = 16,
        strategies: tuple[tuple[float, float, float, float, float], ...] = DEFAULT_STRATEGIES,
        border_penalty: float = 2.0,
        size_exponent: float = 0.25,
        fill_exponent: float = 0.25,
        roundness_exponent: float = 0.25,
        edge_scale: float = 10.0,
        joint_bins: int = 8,
    ):
        self.check_params({"max_regions": max_regions, "min_region": min_region, "max_region": max_region})
        self.scale = float(scale)
        self.sigma = float(sigma)
        self.min_size = float(min_size)
        self.max_pixels = int(max_pixels)
        self.max_regions = int(max_regions)
        self.min_region = float(min_region)
        self.max_region = float(max_region)
        self.nms_iou = float(nms_iou)
        self.max_overlap = float(max_overlap)
        self.min_score = float(min_score)
        self.colour_bins = int(colour_bins)
        self.strategies = tuple(tuple(float(w) for w in s) for s in strategies)
        self.border_penalty = float(border_penalty)
        self.size_exponent = float(size_exponent)
        self.fill_exponent = float(fill_exponent)
        self.roundness_exponent = float(roundness_exponent)
        self.edge_scale = float(edge_scale)
        self.joint_bins = int(joint_bins)

    @staticmethod
    def check_params(params: dict) -> None:
        """The value checks of the constructor (ValueError, one line), without building anything:
        a sweep runs them at plan time."""
        max_regions = params.get("max_regions", 6)
        min_region, max_region = params.get("min_region", 0.01), params.get("max_region", 0.6)
        if max_regions < 0:
            raise ValueError(f"felzenszwalb masker: max_regions must be >= 0, got {max_regions}")
        if not 0 <= min_region <= max_region <= 1:
            raise ValueError(
                f"felzenszwalb masker: need 0 <= min_region <= max_region <= 1, got {min_region}, {max_region}"
            )
        for key in ("scale", "max_pixels", "colour_bins", "joint_bins", "edge_scale"):
            if key in params and params[key] <= 0:
                raise ValueError(f"felzenszwalb masker: {key} must be > 0, got {params[key]}")

    # ------------------------------------------------------------------ public
    def __call__(self, image: np.ndarray, path: str = "") -> Proposals:
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] < 3:
            raise ValueError(f"felzenszwalb masker: expected an (H, W, 3) image, got {image.shape}")
        image = image[..., :3]
        if image.dtype != np.uint8:  # the interface promises uint8; anything else is clipped to 0..255
            image = np.clip(image, 0, 255).astype(np.uint8)
        height, width = image.shape[:2]
        work = _downscale(image, self.max_pixels)
        seg = self._segments(work)
        members, scores = self._propose(seg)
        if len(members) == 0:
            return Proposals(np.zeros((0, height, width), bool), np.zeros(0, np.float32))
        labels = seg.labels
        if work.shape[:2] != (height, width):  # back to the input resolution (nearest neighbour)
            rows = (np.arange(height) * labels.shape[0] // height).clip(0, labels.shape[0] - 1)
            cols = (np.arange(width) * labels.shape[1] // width).clip(0, labels.shape[1] - 1)
            labels = labels[rows[:, None], cols[None, :]]
        return Proposals(members[:, labels], scores.astype(np.float32))

    # ------------------------------------------------------------------ steps
    def _propose(self, seg: _Segments) -> tuple[np.ndarray, np.ndarray]:
        """Chosen candidates as segment-membership rows (K, n) bool and their scores (K,)."""
        total = float(seg.labels.size)
        if seg.n < 2 or self.max_regions == 0:
            return np.zeros((0, seg.n), bool), np.zeros(0)
        cands = [np.eye(seg.n, dtype=bool)]
        for weights in self.strategies:
            cands.append(_hierarchy(seg, weights, total))
        members = np.concatenate(cands)
        area = (members * seg.area).sum(1)
        keep = (area >= self.min_region * total) & (area <= self.max_region * total)
        members = members[keep]
        if len(members) == 0:
            return np.zeros((0, seg.n), bool), np.zeros(0)
        members = np.unique(members, axis=0)
        scores, boxes, area = self._objectness(seg, members)
        return self._select(seg, members, scores, boxes, area)

    def _segments(self, image: np.ndarray) -> _Segments:
        """Felzenszwalb over-segmentation plus per-segment histograms, adjacency and boundaries."""
        h, w = image.shape[:2]
        total = h * w
        scale = self.scale * total / REFERENCE_AREA
        min_size = max(MIN_SEGMENT_PIXELS, int(round(self.min_size * total)))
        labels = felzenszwalb(image, scale=scale, sigma=self.sigma, min_size=min_size)
        _, labels = np.unique(labels, return_inverse=True)
        labels = labels.reshape(h, w)
        n = int(labels.max()) + 1

        lab = rgb2lab(ndimage.gaussian_filter(image.astype(np.float32) / 255.0, (self.sigma, self.sigma, 0)))
        flat = labels.ravel()
        area = np.bincount(flat, minlength=n).astype(np.float64)

        # colour histograms over Lab (L in [0, 100], a and b in [-100, 100])
        nb = self.colour_bins
        hists = []
        for c, (lo, hi) in enumerate(((0.0, 100.0), (-100.0, 100.0), (-100.0, 100.0))):
            q = ((lab[..., c].ravel() - lo) / (hi - lo) * nb).astype(np.int64).clip(0, nb - 1)
            hist = np.bincount(flat * nb + q, minlength=n * nb).reshape(n, nb)
            hists.append(hist / area[:, None])
        colour = np.concatenate(hists, axis=1) / 3.0
        # joint Lab histogram (a colour matches only when all three channels do)
        jb = self.joint_bins
        qs = [((lab[..., c].ravel() - lo) / (hi - lo) * jb).astype(np.int64).clip(0, jb - 1)
              for c, (lo, hi) in enumerate(((0.0, 100.0), (-80.0, 80.0), (-80.0, 80.0)))]
        q = (qs[0] * jb + qs[1]) * jb + qs[2]
        joint = np.bincount(flat * jb**3 + q, minlength=n * jb**3).reshape(n, jb**3) / area[:, None]

        # texture: gradient orientation (mod pi, 8 bins) x magnitude (3 bins) of the L channel
        gy = ndimage.sobel(lab[..., 0], axis=0)
        gx = ndimage.sobel(lab[..., 0], axis=1)
        mag = np.hypot(gx, gy).ravel()
        ori = ((np.arctan2(gy, gx).ravel() % np.pi) / np.pi * 8).astype(np.int64).clip(0, 7)
        mbin = np.digitize(mag, (10.0, 40.0))
        tbin = np.where(mbin == 0, 0, 1 + (mbin - 1) * 8 + ori)  # flat pixels share one bin
        texture = np.bincount(flat * 17 + tbin, minlength=n * 17).reshape(n, 17) / area[:, None]

        # adjacency: 4-neighbour pixel pairs with different labels
        a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
        b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
        diff = np.concatenate([
            np.linalg.norm(lab[:, :-1] - lab[:, 1:], axis=2).ravel(),
            np.linalg.norm(lab[:-1, :] - lab[1:, :], axis=2).ravel(),
        ])
        cut = a != b
        lo, hi, diff = np.minimum(a[cut], b[cut]), np.maximum(a[cut], b[cut]), diff[cut]
        key = lo.astype(np.int64) * n + hi
        keys, inv = np.unique(key, return_inverse=True)
        shared = np.bincount(inv, minlength=len(keys)).astype(np.float64)
        edge = np.bincount(inv, weights=diff, minlength=len(keys))
        pair_i, pair_j = keys // n, keys % n

        edge_pixels = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        border = np.bincount(edge_pixels, minlength=n).astype(np.float64)
        perimeter = border + np.bincount(pair_i, shared, n) + np.bincount(pair_j, shared, n)

        bbox = np.zeros((n, 4))
        for i, sl in enumerate(ndimage.find_objects(labels + 1)):
            if sl is not None:
                bbox[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        return _Segments(labels, n, area, bbox, colour, joint, texture, pair_i, pair_j, shared, edge, border, perimeter)

    def _objectness(self, seg: _Segments, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score, box and area of every candidate: contrast x compactness x border x size."""
        f = _features(seg, members)
        scores = (
            (0.5 * f["colour_contrast"] + 0.5 * f["edge_contrast"] / (f["edge_contrast"] + self.edge_scale))
            * f["fill"] ** self.fill_exponent
            * f["roundness"] ** self.roundness_exponent
            * (1.0 - f["border"]) ** self.border_penalty
            * f["size"] ** self.size_exponent
        )
        return scores, f["boxes"], f["area"]

    def _select(
        self, seg: _Segments, members: np.ndarray, scores: np.ndarray, boxes: np.ndarray, area: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best first, skipping near-duplicate boxes and masks overlapping a chosen one."""
        order = np.argsort(-scores, kind="stable")
        chosen: list[int] = []
        best = scores[order[0]]
        for idx in order:
            if len(chosen) >= self.max_regions:
                break
            if scores[idx] <= 0 or scores[idx] < self.min_score * best:
                break
            if chosen:
                c = np.asarray(chosen)
                iou = _box_iou(boxes[idx], boxes[c])
                if (iou > self.nms_iou).any():
                    continue
                inter = ((members[c] & members[idx]) * seg.area).sum(1)
                if (inter / np.minimum(area[c], area[idx]) > self.max_overlap).any():
                    continue
            chosen.append(int(idx))
        c = np.asarray(chosen, np.int64)
        return members[c], scores[c]


def _features(seg: _Segments, members: np.ndarray) -> dict[str, np.ndarray]:
    """Objectness cues of candidate regions (rows of segment membership), vectorised."""
    n = seg.n
    total = float(seg.labels.size)
    # Sparse products throughout: scipy's sparse kernels are single-threaded, whereas small dense
    # BLAS products thrash when several masker processes share the cores.
    ms = sparse.csr_matrix(members, dtype=np.float64)
    outside = ~members
    sym_i = np.concatenate([seg.pair_i, seg.pair_j])
    sym_j = np.concatenate([seg.pair_j, seg.pair_i])
    bnd = sparse.csr_matrix((np.concatenate([seg.shared, seg.shared]), (sym_i, sym_j)), shape=(n, n))
    edg = sparse.csr_matrix((np.concatenate([seg.edge, seg.edge]), (sym_i, sym_j)), shape=(n, n))
    out_w = (ms @ bnd).toarray() * outside  # (C, n): boundary shared with each outside segment
    out_len = out_w.sum(1)
    out_edge = ((ms @ edg).toarray() * outside).sum(1)
    area = ms @ seg.area
    border = ms @ seg.border
    perimeter = out_len + border

    # colour contrast with the surrounding segments (weighted by the boundary shared with them)
    hist = ms @ (seg.joint * seg.area[:, None]) / np.maximum(area, 1)[:, None]
    sur = sparse.csr_matrix(out_w) @ seg.joint / np.maximum(out_len, 1e-9)[:, None]
    colour_contrast = np.where(out_len > 0, 1.0 - np.minimum(hist, sur).sum(1), 0.0)
    edge_contrast = out_edge / np.maximum(out_len, 1e-9)

    big = np.where(members, 1.0, np.nan)
    boxes = np.stack([
        np.nanmin(big * seg.bbox[:, 0], 1),
        np.nanmin(big * seg.bbox[:, 1], 1),
        np.nanmax(big * seg.bbox[:, 2], 1),
        np.nanmax(big * seg.bbox[:, 3], 1),
    ], axis=1)
    box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return {
        "area": area,
        "boxes": boxes,
        "size": area / total,
        "colour_contrast": colour_contrast,
        "edge_contrast": edge_contrast,
        "fill": area / np.maximum(box_area, 1),
        "roundness": (4 * np.pi * area / np.maximum(perimeter, 1) ** 2).clip(0, 1),
        "border": border / np.maximum(perimeter, 1),
    }


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    ih = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    inter = iw * ih
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(a + b - inter, 1e-9)


def _downscale(image: np.ndarray, max_pixels: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image
    f = np.sqrt(max_pixels / (h * w))
    nh, nw = max(1, int(round(h * f))), max(1, int(round(w * f)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((nw, nh), Image.BILINEAR))


def _hierarchy(seg: _Segments, weights: tuple[float, ...], total: float) -> np.ndarray:
    """Greedy hierarchical grouping; returns the membership (m, n) bool of every merged region."""
    wc, wt, ws, wf, wb = weights
    n = seg.n
    cap = 2 * n
    size = np.zeros(cap)
    size[:n] = seg.area
    bbox = np.zeros((cap, 4))
    bbox[:n] = seg.bbox
    colour = np.zeros((cap, seg.colour.shape[1]))
    colour[:n] = seg.colour
    texture = np.zeros((cap, seg.texture.shape[1]))
    texture[:n] = seg.texture
    perim = np.zeros(cap)
    perim[:n] = seg.perimeter
    member = np.zeros((cap, n), bool)
    member[np.arange(n), np.arange(n)] = True
    alive = np.zeros(cap, bool)
    alive[:n] = True
    nbrs: list[dict[int, float]] = [dict() for _ in range(n)]
    for i, j, s in zip(seg.pair_i.tolist(), seg.pair_j.tolist(), seg.shared.tolist()):
        nbrs[i][j] = s
        nbrs[j][i] = s

    def sim(a: np.ndarray, b: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """Similarity of regions a[t] and b[t] (index arrays) sharing ``shared[t]`` boundary."""
        out = np.zeros(len(b))
        if wc:
            out += wc * np.minimum(colour[a], colour[b]).sum(1)
        if wt:
            out += wt * np.minimum(texture[a], texture[b]).sum(1)
        if ws:
            out += ws * (1.0 - (size[a] + size[b]) / total)
        if wf:
            bw = np.maximum(bbox[a, 2], bbox[b, 2]) - np.minimum(bbox[a, 0], bbox[b, 0])
            bh = np.maximum(bbox[a, 3], bbox[b, 3]) - np.minimum(bbox[a, 1], bbox[b, 1])
            out += wf * (1.0 - (bw * bh - size[a] - size[b]) / total)
        if wb:
            out += wb * shared / np.maximum(np.minimum(perim[a], perim[b]), 1)
        return out

    # a heap of (-similarity, i, j); entries whose regions were merged away are skipped when popped
    s0 = sim(seg.pair_i, seg.pair_j, seg.shared)
    heap = list(zip((-s0).tolist(), seg.pair_i.tolist(), seg.pair_j.tolist()))
    heapq.heapify(heap)

    k = n
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        shared_ij = nbrs[i].pop(j)
        del nbrs[j][i]
        si, sj = size[i], size[j]
        size[k] = si + sj
        bbox[k, :2] = np.minimum(bbox[i, :2], bbox[j, :2])
        bbox[k, 2:] = np.maximum(bbox[i, 2:], bbox[j, 2:])
        colour[k] = (colour[i] * si + colour[j] * sj) / (si + sj)
        texture[k] = (texture[i] * si + texture[j] * sj) / (si + sj)
        perim[k] = perim[i] + perim[j] - 2 * shared_ij
        member[k] = member[i] | member[j]
        alive[i] = alive[j] = False
        alive[k] = True
        merged = nbrs[i]
        for o, s in nbrs[j].items():
            merged[o] = merged.get(o, 0.0) + s
        nbrs.append(merged)
        nbrs[i] = nbrs[j] = {}
        for o, s in merged.items():
            d = nbrs[o]
            d.pop(i, None)
            d.pop(j, None)
            d[k] = s
        if merged:
            others = np.fromiter(merged.keys(), np.int64, len(merged))
            shared = np.fromiter(merged.values(), np.float64, len(merged))
            for o, s in zip(others.tolist(), sim(np.full(len(others), k), others, shared).tolist()):
                heapq.heappush(heap, (-s, o, k))
        k += 1
    return member[n:k]
