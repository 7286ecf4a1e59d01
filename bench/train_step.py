"""Training throughput, side by side in one run: SAMCLR vs SimCLR, and ours vs a plain lightly loop.

All three train the same ResNet18 on the same synthetic scenes with the same batch and view size:

- ``ours simclr``: ``selfsup.training.Pretraining`` with whole-image views,
- ``ours samclr``: the same with ground-truth region views (``sampling: regions``),
- ``lightly loop``: the loop of lightly's SimCLR example: an image folder through
  ``lightly.transforms.SimCLRTransform``, lightly's projection head and NT-Xent, plain SGD,
  no mixed precision.

Each is timed over its last epoch (the first warms up workers, cuDNN and allocators).
Absolute numbers mean something only on the GPU machine; the ratios are the point.

    python bench/train_step.py [--device cuda] [--batch 256] [--size 128] [--scenes 2048] [--workers 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from masking.maskers import MaskerConfig, regions_of  # noqa: E402
from selfsup.backbone import resnet18  # noqa: E402
from selfsup.config import EvalConfig, TrainConfig  # noqa: E402
from selfsup.data.images import list_images, load_rgb  # noqa: E402
from selfsup.data.synthetic import SyntheticConfig, generate  # noqa: E402
from selfsup.training import Pretraining, resolve_device  # noqa: E402


def ours(method: str, images: Path, boxes: dict, args: argparse.Namespace) -> float:
    cfg = TrainConfig(
        method=method, epochs=args.epochs, batch_size=args.batch, image_size=args.size, workers=args.workers, device=args.device
    )
    run = Pretraining(cfg, EvalConfig(every=10**6), images, [], boxes_of=boxes.__getitem__)
    return run.fit()[-1]["images_per_s"]


def lightly_loop(images: Path, args: argparse.Namespace) -> float:
    from lightly.data import LightlyDataset
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform

    device = resolve_device(args.device)
    backbone, dim = resnet18()
    model = torch.nn.Sequential(backbone, SimCLRProjectionHead(dim, dim, 128)).to(device)
    criterion = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06 * args.batch / 256, momentum=0.9, weight_decay=5e-4)
    dataset = LightlyDataset(str(images), transform=SimCLRTransform(input_size=args.size))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True, num_workers=args.workers)
    rate = 0.0
    for _ in range(args.epochs):
        seen, start = 0, time.perf_counter()
        for (x0, x1), _, _ in loader:
            x0, x1 = x0.to(device), x1.to(device)
            loss = criterion(model(x0), model(x1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(x0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - start)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--scenes", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(tmp, SyntheticConfig(scenes=args.scenes, scene_size=256, object_size=(64, 112), eval_train_per_class=1, eval_val_per_class=1))
        config = MaskerConfig("ground_truth", {"masks_root": str(paths.masks)}, min_area=1000)
        masker = config.build()
        boxes = {p: regions_of(masker, config, np.asarray(load_rgb(paths.images / p)), p).boxes for p in list_images(paths.images)}
        results = {
            "ours simclr": ours("simclr", paths.images, boxes, args),
            "ours samclr": ours("samclr", paths.images, boxes, args),
            "lightly loop": lightly_loop(paths.images, args),
        }
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"ResNet18, {args.size} px views, batch {args.batch}, {args.workers} workers, {args.scenes} scenes of 256 px, on {name}")
    for key, value in results.items():
        print(f"{key:14s} {value:9.1f} images/s")
    print(f"samclr / simclr       {results['ours samclr'] / results['ours simclr']:.3f}x")
    print(f"ours simclr / lightly {results['ours simclr'] / results['lightly loop']:.3f}x")


if __name__ == "__main__":
    main()
