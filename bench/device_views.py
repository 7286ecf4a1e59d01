"""The ``input: gpu`` path against an earlier commit's, side by side: cache build seconds and views/s.

Both trees run the same measurement through their own public API (``selfsup.training.Pretraining``),
each in its own process with its tree first on ``PYTHONPATH`` (the older tree comes from
``git archive``):

- ``cache build s``: building the run with ``input: gpu`` (decoding and resizing every image into
  the cache, and, where the tree does it, copying it to the device), the model being a few ms of it;
- ``views/s``: training images per second of an epoch whose model is one scalar weight, so the
  epoch is the input path alone: the DataLoader (workers drawing crop boxes, and in the older tree
  shipping padded pixels), the batch reaching the device, and the views made there in batches.

Images: ``--images`` JPEG photos of about 500 x 375 px (ImageNette's size; crops of scikit-image's
bundled photos), SimCLR's two 128 px views, cache short side 192 px. Rounds alternate between the
trees and the median is printed, so background load hits both alike.

    python bench/device_views.py                      # against 9ae6789 (main before issue 18), on the CPU
    python bench/device_views.py --before 9ae6789 --images 256 --batch 64 --workers 1 --epochs 2 --rounds 2 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, n: int) -> None:
    """``n`` JPEGs of about 500 x 375 px, crops of scikit-image's photos at varied positions and aspects."""
    import numpy as np
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    bases = [Image.fromarray(a).convert("RGB") for a in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())]
    folder.mkdir(parents=True)
    for i in range(n):
        base = bases[i % len(bases)]
        w, h = base.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        size = (500, 375) if rng.random() < 0.8 else (375, 500)
        base.crop((x, y, x + cw, y + ch)).resize(size, Image.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)



def measure(images: str, args: dict) -> dict:
    """In the tree on ``sys.path``: seconds to build an ``input: gpu`` run, and its input-bound images/s."""
    import torch

    from selfsup.config import EvalConfig, TrainConfig
    from selfsup.training import Pretraining

    torch.set_num_threads(args["threads"])
    cfg = TrainConfig(method="simclr", epochs=args["epochs"], batch_size=args["batch"], image_size=args["size"], workers=args["workers"],
                      device=args["device"], input="gpu", backbone_width=8)
    start = time.perf_counter()
    run = Pretraining(cfg, EvalConfig(every=10**6, linear_epochs=0), images, [])
    built = time.perf_counter() - start

    class Scalar(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones((), device=run.device))

        def forward(self, views):
            return self.w * sum(v.float().mean() for v in views)

    run.step_model = Scalar()
    run.optimizer = torch.optim.SGD(run.step_model.parameters(), lr=0.0)
    rates = []
    for epoch in range(args["epochs"]):
        run.epoch = epoch
        rates.append(run.train_epoch()["images_per_s"])
    return {"cache_build_s": built, "views_per_s": statistics.median(rates[1:] or rates)}


def child(tree: str, images: str, args: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, __file__, "--child", images, json.dumps(args)], env=env, cwd=tree,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"measurement in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="9ae6789", help="the commit to compare with")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--epochs", type=int, default=2, help="per run; the first is not timed")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(measure(args.child[0], json.loads(args.child[1]))))
        return
    settings = {k: getattr(args, k) for k in ("batch", "size", "workers", "threads", "epochs", "device")}
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "selfsup", "masking"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        photos = Path(tmp) / "photos"
        make_photos(photos, args.images)
        trees = {f"{args.before} (before)": str(before), "this tree": str(ROOT)}
        results: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                results[name].append(child(tree, str(photos), settings))
    print(f"input: gpu path, {args.images} JPEGs ~500x375, batch {args.batch}, {args.size} px views (cache 192 px), "
          f"{args.workers} worker(s), {args.threads} torch thread(s), device {args.device}, {os.cpu_count()} cores; "
          f"median of {args.rounds} rounds")
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}
    print(f"{'tree':24s} {'cache build s':>14s} {'views/s':>10s}")
    for name, m in medians.items():
        print(f"{name:24s} {m['cache_build_s']:14.2f} {m['views_per_s']:10.1f}")
    old, new = medians[f"{args.before} (before)"], medians["this tree"]
    print(f"this tree / before: cache build {old['cache_build_s'] / new['cache_build_s']:.2f}x faster, "
          f"views/s {new['views_per_s'] / old['views_per_s']:.2f}x")


if __name__ == "__main__":
    main()
