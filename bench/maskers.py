"""How well each masker proposes objects, and how pure the view pairs drawn in its regions are.

The scenes (``SyntheticConfig()`` defaults: 128x128, 2-4 objects of 32-56 px on a cluttered
background) are written to a temporary folder with ``samdata.synthetic.generate`` (the
``ground_truth`` masker reads the instance masks from there). The maskers named by ``--maskers``
(default: ``plain``, ``felzenszwalb``, ``ground_truth``: a few seconds on a laptop) run with their
default parameters, followed by the same region selection the region store applies
(``regions_of``: regions under ``--min-area`` px dropped, coarsest kept, containment 0.9); the
baseline "plain felzenszwalb (scale 300)" makes every raw ``skimage`` Felzenszwalb segment a mask.

A true object (box of its instance mask) counts as found when some kept region's box has IoU >= 0.5
with it. Reported per masker: recall, mean kept regions per image, mean best box IoU over the true
objects (0 for an object no region touches) and seconds per image (masker + region selection, one
process; wall clock, so background load shows). Beside recall, the view-pair purity of each
masker's regions (``masking.purity``: SimCLR's two views, ``--min-scale``, drawn in a region enlarged
by ``--c``; P(same object), P(same class), P(mostly-background view)) and, as its first row, that
of whole-image views (``random`` sampling, the SimCLR baseline). Recall says whether the objects are
among the regions; purity says how often a draw's two views show one object, which is what
region sampling changes.

HQ-SAM needs weights: it runs only when ``--hqsam-checkpoint`` is given (with random weights its
masks mean nothing, and at 32 x 32 points it takes minutes per image on a CPU); so does ``features``
(``--features-checkpoint``: a pretraining checkpoint whose own feature maps are clustered).

    python bench/maskers.py [--scenes 200] [--min-area 200] [--maskers plain,felzenszwalb,ground_truth]
    python bench/maskers.py --sweep experiments/fashion_scenes.yaml --dataset fashion_scenes --min-area 100 --min-scale 0.2
    python bench/maskers.py --maskers ground_truth,hqsam --hqsam-checkpoint sam_hq_vit_tiny.pth --hqsam-model vit_tiny
    python bench/maskers.py --sweep experiments/fashion_scenes.yaml --dataset fashion_scenes --min-area 100 --min-scale 0.2 \
        --maskers felzenszwalb,ground_truth --features-checkpoint runs/fashion_scenes-<time>/<trial>/checkpoint.pt

``--sweep``/``--dataset`` take the scenes' generator settings from a sweep file's synthetic dataset
instead of the defaults (relative paths resolved from the working directory, as the sweep does).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.ops import box_iou as box_iou_torch  # noqa: E402
from skimage.segmentation import felzenszwalb  # noqa: E402

from masking.maskers import MASKERS, Masker, MaskerConfig, Proposals, regions_of  # noqa: E402
from masking.purity import Purity, Scene, read_classes, view_pair_purity  # noqa: E402
from masking.crops import CropSpec  # noqa: E402
from masking.regions import REFERENCE_CONTAINMENT, mask_boxes  # noqa: E402
from samdata.synthetic import SyntheticConfig, generate  # noqa: E402


class PlainFelzenszwalb:
    """Baseline: every segment of ``skimage.segmentation.felzenszwalb`` is a mask."""

    def __init__(self, scale: float = 300, sigma: float = 0.8, min_size: int = 20):
        self.scale, self.sigma, self.min_size = scale, sigma, min_size

    def __call__(self, image: np.ndarray, path: str) -> Proposals:
        labels = felzenszwalb(image, scale=self.scale, sigma=self.sigma, min_size=self.min_size)
        masks = labels[None] == np.unique(labels)[:, None, None]
        return Proposals(masks, np.ones(len(masks), np.float32))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes with exclusive ends (torchvision's box_iou)."""
    return box_iou_torch(torch.as_tensor(a, dtype=torch.float64).reshape(-1, 4), torch.as_tensor(b, dtype=torch.float64).reshape(-1, 4)).numpy()


@dataclasses.dataclass
class Score:
    found: int = 0
    objects: int = 0
    regions: int = 0
    images: int = 0
    best_iou: float = 0.0
    seconds: float = 0.0
    purity: Purity | None = None

    def row(self, name: str) -> str:
        """One table row; the recall cells are dashes for a row without objects scored (whole images)."""
        p = self.purity
        pure = "" if p is None else f" {p.same_object:>8.3f} {_maybe(p.same_class):>8s} {p.background_view:>8.3f} {_maybe(p.fallback):>9s}"
        if not self.objects:
            return f"{name:36s} {'–':>10s} {'–':>12s} {'–':>9s} {'–':>9s}{pure}"
        return (
            f"{name:36s} {self.found / self.objects:>10.3f} {self.regions / max(self.images, 1):>12.2f}"
            f" {self.best_iou / self.objects:>9.3f} {self.seconds / max(self.images, 1):>9.4f}{pure}"
        )


def _maybe(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


HEADER = (
    f"{'masker':36s} {'recall@0.5':>10s} {'regions/img':>12s} {'mean IoU':>9s} {'s/img':>9s}"
    f" {'same obj':>8s} {'same cls':>8s} {'bg view':>8s} {'fallback':>9s}"
)


def evaluate(
    masker: Masker, config: MaskerConfig, scenes: list[tuple[str, np.ndarray, np.ndarray]], ids: dict[str, np.ndarray],
    classes: dict[str, list[int]], crops: tuple[CropSpec, ...], c: float, draws: int,
) -> Score:
    """Recall of the true boxes, and view-pair purity of the kept regions (``ids``: instance maps)."""
    score = Score()
    purity_scenes = []
    for path, image, true_boxes in scenes:
        start = time.perf_counter()
        regions = regions_of(masker, config, image, path)
        score.seconds += time.perf_counter() - start
        best = box_iou(true_boxes, regions.boxes).max(axis=1) if len(regions) else np.zeros(len(true_boxes))
        score.found += int((best >= 0.5).sum())
        score.objects += len(true_boxes)
        score.best_iou += float(best.sum())
        score.regions += len(regions)
        score.images += 1
        purity_scenes.append(Scene(path, ids[path], regions.boxes, classes.get(path)))
    score.purity = view_pair_purity(purity_scenes, crops, "regions", c, draws)
    return score


def load_scenes(images: Path, masks: Path, count: int) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """(relative path, RGB image, true object boxes) of the first ``count`` scenes, and their instance maps."""
    out, id_maps = [], {}
    for i in range(count):
        name = f"{i:05d}.png"
        image = np.asarray(Image.open(images / name).convert("RGB"))
        ids = np.asarray(Image.open(masks / name))
        instances = [k for k in np.unique(ids) if k != 0]
        boxes = mask_boxes(np.stack([ids == k for k in instances])) if instances else np.zeros((0, 4), np.int32)
        out.append((name, image, boxes))
        id_maps[name] = ids.astype(np.int64)
    return out, id_maps


def key_values(text: str) -> dict[str, object]:
    """``clusters=3,grid=8`` -> {"clusters": 3, "grid": 8} (values read as YAML scalars)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"error: --features-params {text!r}: write KEY=VALUE[,KEY=VALUE]")
        out[key.strip()] = yaml.safe_load(value)
    return out


DEFAULT_MASKERS = ("plain", "felzenszwalb", "ground_truth")
NEEDS_WEIGHTS = {"hqsam": "--hqsam-checkpoint", "features": "--features-checkpoint"}
"""Maskers whose output means nothing without weights, and the option that gives them."""


def choose_maskers(names: str, weights: dict[str, str | None]) -> list[str]:
    """The maskers of ``--maskers`` (comma-separated; ``plain`` is the raw-segment baseline); a masker
    that needs weights (``NEEDS_WEIGHTS``) is refused without them (SystemExit with one line) and added
    when they are given. ``weights``: masker name -> the file its option gave, or None."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    known = ("plain", *MASKERS)
    for name in chosen:
        if name not in known:
            raise SystemExit(f"error: unknown masker {name!r} in --maskers; known: {', '.join(known)}")
        if name in NEEDS_WEIGHTS and not weights.get(name):
            raise SystemExit(f"error: {name} needs weights: give {NEEDS_WEIGHTS[name]} FILE (random weights make meaningless masks)")
    chosen += [name for name in NEEDS_WEIGHTS if weights.get(name) and name not in chosen]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200, help="number of synthetic scenes (default 200)")
    parser.add_argument("--min-area", type=int, default=200, help="smallest region kept, px (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic generator seed (default 0)")
    parser.add_argument("--sweep", help="take the scenes' settings from this sweep file's synthetic dataset")
    parser.add_argument("--dataset", help="the synthetic dataset of --sweep")
    parser.add_argument("--maskers", default=",".join(DEFAULT_MASKERS), help=f"comma-separated (default {','.join(DEFAULT_MASKERS)}; also: {', '.join(NEEDS_WEIGHTS)})")
    parser.add_argument("--hqsam-checkpoint", help="HQ-SAM weights: hqsam runs only with them")
    parser.add_argument("--hqsam-model", default="vit_h", help="HQ-SAM model type of the checkpoint (default vit_h)")
    parser.add_argument("--features-checkpoint", help="a pretraining checkpoint (a trial's checkpoint.pt): features runs only with it")
    parser.add_argument(
        "--features-params", action="append", default=[],
        help="features masker settings as KEY=VALUE[,KEY=VALUE], e.g. clusters=3,grid=8; repeat it for a row per variant",
    )
    parser.add_argument("--c", type=float, default=1.3, help="region-box enlargement for purity (default 1.3)")
    parser.add_argument("--min-scale", type=float, default=0.08, help="smallest crop area fraction of the two views (default 0.08)")
    parser.add_argument("--draws", type=int, default=32, help="view pairs per image for purity (default 32)")
    args = parser.parse_args()
    names = choose_maskers(args.maskers, {"hqsam": args.hqsam_checkpoint, "features": args.features_checkpoint})
    base = SyntheticConfig()
    if args.sweep:
        from orchestrator.config import load_sweep

        params = dict(load_sweep(args.sweep).datasets[args.dataset].synthetic or {})
        if params.get("items_root"):
            params["items_root"] = str(Path(params["items_root"]).resolve())
        base = SyntheticConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    # the scenes depend on neither ``scenes`` nor the eval-set sizes: scene i is the same as in
    # SyntheticConfig(seed=seed); the single-object eval sets are not needed here
    synthetic = dataclasses.replace(
        base, scenes=args.scenes, seed=args.seed, eval_train_per_class=0, eval_val_per_class=0
    )
    crops = (CropSpec(2, 32, scale=(args.min_scale, 1.0)),)
    with tempfile.TemporaryDirectory(prefix="bench-maskers-") as tmp:
        paths = generate(tmp, synthetic)
        scenes, ids = load_scenes(paths.images, paths.masks, args.scenes)
        classes = read_classes(paths.classes)
        candidates: list[tuple[str, Masker, MaskerConfig]] = []
        for name in names:
            if name == "plain":
                config = MaskerConfig("felzenszwalb", min_area=args.min_area, containment=REFERENCE_CONTAINMENT)
                candidates.append(("plain felzenszwalb (scale 300)", PlainFelzenszwalb(scale=300), config))
                continue
            params = {"masks_root": str(paths.masks)} if name == "ground_truth" else {}
            if name == "hqsam":
                params = {"checkpoint": args.hqsam_checkpoint, "model_type": args.hqsam_model}
            variants = [""]
            if name == "features":
                params = {"checkpoint": args.features_checkpoint}
                variants = args.features_params or [""]
            for variant in variants:
                config = MaskerConfig(name, {**params, **key_values(variant)}, min_area=args.min_area, containment=REFERENCE_CONTAINMENT)
                candidates.append((f"{name} {variant}".strip(), config.build(), config))

        print(
            f"synthetic scenes: {args.scenes} x {synthetic.scene_size}px, seed {args.seed}, "
            f"{sum(len(s[2]) for s in scenes)} objects; regions >= {args.min_area} px, coarsest "
            f"(containment {REFERENCE_CONTAINMENT}); found = box IoU >= 0.5; purity: {args.draws} pairs/image, "
            f"views of area [{args.min_scale}, 1] of a region box enlarged by c = {args.c}"
        )
        print(HEADER)
        whole = [Scene(p, ids[p], None, classes.get(p)) for p, _, _ in scenes]
        baseline = Score(images=len(scenes), purity=view_pair_purity(whole, crops, "random", draws=args.draws))
        print(baseline.row("whole image (random sampling)"), flush=True)
        for name, masker, config in candidates:
            print(evaluate(masker, config, scenes, ids, classes, crops, args.c, args.draws).row(name), flush=True)


if __name__ == "__main__":
    main()
