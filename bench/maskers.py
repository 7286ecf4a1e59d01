"""How well each masker proposes objects on the built-in synthetic scenes.

The scenes (``SyntheticConfig()`` defaults: 128x128, 2-4 objects of 32-56 px on a cluttered
background) are written to a temporary folder with ``selfsup.data.synthetic.generate`` (the
``ground_truth`` masker reads the instance masks from there). Every masker in ``MASKERS`` runs
with its default parameters, followed by the same region selection the region store applies
(``regions_of``: regions under ``--min-area`` px dropped, coarsest kept, containment 0.9); the
baseline "plain felzenszwalb (scale 300)" makes every raw ``skimage`` Felzenszwalb segment a mask.

A true object (box of its instance mask) counts as found when some kept region's box has IoU >= 0.5
with it. Reported per masker: recall, mean kept regions per image, mean best box IoU over the true
objects (0 for an object no region touches) and seconds per image (masker + region selection, one
process; wall clock, so background load shows).

    python bench/maskers.py [--scenes 200] [--min-area 200]
    python bench/maskers.py --sweep experiments/fashion_scenes.yaml --dataset fashion_scenes --min-area 100

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
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.ops import box_iou as box_iou_torch  # noqa: E402
from skimage.segmentation import felzenszwalb  # noqa: E402

from masking.maskers import MASKERS, Masker, MaskerConfig, Proposals, regions_of  # noqa: E402
from masking.regions import REFERENCE_CONTAINMENT, mask_boxes  # noqa: E402
from selfsup.data.synthetic import SyntheticConfig, generate  # noqa: E402


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

    def row(self, name: str) -> str:
        return (
            f"{name:36s} {self.found / max(self.objects, 1):>10.3f} {self.regions / max(self.images, 1):>12.2f}"
            f" {self.best_iou / max(self.objects, 1):>9.3f} {self.seconds / max(self.images, 1):>9.4f}"
        )


def evaluate(masker: Masker, config: MaskerConfig, scenes: list[tuple[str, np.ndarray, np.ndarray]]) -> Score:
    score = Score()
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
    return score


def load_scenes(images: Path, masks: Path, count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(relative path, RGB image, true object boxes) of the first ``count`` scenes."""
    out = []
    for i in range(count):
        name = f"{i:05d}.png"
        image = np.asarray(Image.open(images / name).convert("RGB"))
        ids = np.asarray(Image.open(masks / name))
        instances = [k for k in np.unique(ids) if k != 0]
        boxes = mask_boxes(np.stack([ids == k for k in instances])) if instances else np.zeros((0, 4), np.int32)
        out.append((name, image, boxes))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200, help="number of synthetic scenes (default 200)")
    parser.add_argument("--min-area", type=int, default=200, help="smallest region kept, px (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic generator seed (default 0)")
    parser.add_argument("--sweep", help="take the scenes' settings from this sweep file's synthetic dataset")
    parser.add_argument("--dataset", help="the synthetic dataset of --sweep")
    args = parser.parse_args()
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
    with tempfile.TemporaryDirectory(prefix="bench-maskers-") as tmp:
        paths = generate(tmp, synthetic)
        scenes = load_scenes(paths.images, paths.masks, args.scenes)
        candidates: list[tuple[str, Masker, MaskerConfig]] = [
            (
                "plain felzenszwalb (scale 300)",
                PlainFelzenszwalb(scale=300),
                MaskerConfig("felzenszwalb", min_area=args.min_area, containment=REFERENCE_CONTAINMENT),
            )
        ]
        for name in MASKERS:
            params = {"masks_root": str(paths.masks)} if name == "ground_truth" else {}
            config = MaskerConfig(name, params, min_area=args.min_area, containment=REFERENCE_CONTAINMENT)
            candidates.append((name, config.build(), config))

        print(
            f"synthetic scenes: {args.scenes} x {synthetic.scene_size}px, seed {args.seed}, "
            f"{sum(len(s[2]) for s in scenes)} objects; regions >= {args.min_area} px, coarsest "
            f"(containment {REFERENCE_CONTAINMENT}); found = box IoU >= 0.5"
        )
        print(f"{'masker':36s} {'recall@0.5':>10s} {'regions/img':>12s} {'mean IoU':>9s} {'s/img':>9s}")
        for name, masker, config in candidates:
            print(evaluate(masker, config, scenes).row(name), flush=True)


if __name__ == "__main__":
    main()
