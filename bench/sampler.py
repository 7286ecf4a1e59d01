"""Images/s of our view sampler (``selfsup.views.ViewSampler``, ``regions`` and ``random``) vs lightly's ``SimCLRTransform``.

Same photos (scikit-image's bundled ones), same output size, two views per image, one process;
rounds alternate between the samplers and the median round is reported, so background load hits
all of them alike. The aim (issue 2): ``regions`` no more than 5 % slower than lightly.

    python bench/sampler.py [--size 128] [--rounds 7] [--images 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from lightly.transforms import SimCLRTransform  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from selfsup.views import ViewSampler, ViewSpec  # noqa: E402


def photos() -> list[Image.Image]:
    arrays = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    return [Image.fromarray(a).convert("RGB") for a in arrays]


def boxes_for(img: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """A few plausible region boxes (a quarter to a half of each side)."""
    w, h = img.size
    out = []
    for _ in range(4):
        bw, bh = rng.uniform(0.25, 0.5) * w, rng.uniform(0.25, 0.5) * h
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        out.append([x0, y0, x0 + bw, y0 + bh])
    return np.asarray(out, np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    imgs = photos()
    boxes = [boxes_for(i, rng) for i in imgs]
    lightly = SimCLRTransform(input_size=args.size)
    regions = ViewSampler((ViewSpec(2, args.size),), "regions", c=1.3)
    random = ViewSampler((ViewSpec(2, args.size),), "random")
    candidates = {
        "lightly SimCLRTransform": lambda i: lightly(imgs[i % len(imgs)]),
        "ours, sampling=regions": lambda i: regions(imgs[i % len(imgs)], boxes[i % len(imgs)]),
        "ours, sampling=random": lambda i: random(imgs[i % len(imgs)], None),
    }
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for fn in candidates.values():  # warm-up
        for i in range(10):
            fn(i)
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for i in range(args.images):
                fn(i)
            times[name].append(args.images / (time.perf_counter() - start))
    base = statistics.median(times["lightly SimCLRTransform"])
    print(f"view sampler throughput, {args.size} px, 2 views/image, photos {[i.size for i in imgs]}, 1 thread")
    print(f"{'sampler':28s} {'images/s':>10s} {'vs lightly':>11s}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:28s} {med:10.1f} {med / base:10.3f}x")


if __name__ == "__main__":
    main()
