"""Training throughput, side by side in one run: SAMCLR vs SimCLR, CPU vs GPU input, ours vs a plain lightly loop.

All train the same ResNet18 on the same synthetic scenes with the same batch and view size:

- ``ours simclr``: ``selfsup.training.Pretraining`` with whole-image views made on the CPU,
- ``ours samclr``: the same with ground-truth region views (``sampling: regions``),
- ``ours ... gpu-input``: the same two with ``input: gpu``: images decoded once into a cache,
  workers only draw crop boxes, crops and augmentations run in batches on the device
  (``--compile`` adds ``torch.compile`` of the model to these),
- ``lightly loop``: the loop of lightly's SimCLR example: an image folder through
  ``lightly.transforms.SimCLRTransform``, lightly's projection head and NT-Xent, plain SGD,
  no mixed precision.

Each is timed over its last epoch (the first warms up workers, cuDNN, allocators and compilation);
building the gpu-input cache is timed apart. ``--compile both`` runs every ``ours`` row with and
without ``torch.compile``. Then the input pipelines alone: what one worker delivers on each path,
and the device-side views of ``input: gpu``. Absolute numbers mean something only on the GPU
machine; the ratios are the point.

Defaults follow the device: on CUDA the paper's settings (ResNet18, 128 px views, batch 256, bf16
autocast; SAMCLR paper Sec. 4.1) on 2048 scenes with 8 workers; on a CPU a size that finishes in
about a minute on 2 cores (batch 32, 64 px views, 128 scenes, 1 worker, 1 thread). Any flag
overrides its default.

    python bench/train_step.py                         # sized for the device it finds
    python bench/train_step.py --device cuda --compile both --json rows.json   # as bench/gpu_check.sh runs it
"""

from __future__ import annotations

import argparse
import json
import os
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
from samdata.image_files import list_images, load_rgb  # noqa: E402
from samdata.synthetic import SyntheticConfig, generate  # noqa: E402
from selfsup.training import Pretraining, resolve_device  # noqa: E402


CUDA_DEFAULTS = {"batch": 256, "size": 128, "scenes": 2048, "workers": 8, "epochs": 2, "threads": 0, "repeat": 8}
CPU_DEFAULTS = {"batch": 32, "size": 64, "scenes": 128, "workers": 1, "epochs": 2, "threads": 1, "repeat": 1}


def sized_for(args: argparse.Namespace, device: torch.device) -> argparse.Namespace:
    """Fill every setting left unset from the device's defaults (CUDA: the paper's; CPU: a minute on 2 cores)."""
    defaults = CUDA_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if device.type == "cuda":
        args.workers = min(args.workers, max(1, (os.cpu_count() or 2) - 2))
    return args


def ours(method: str, images: Path, boxes: dict, args: argparse.Namespace, input: str = "cpu", compile: bool = False) -> tuple[float, float]:
    """(images/s over the last epoch, seconds to build the run: the image cache with ``input: gpu``)."""
    cfg = TrainConfig(
        method=method, epochs=args.epochs, batch_size=args.batch, image_size=args.size, workers=args.workers,
        device=args.device, input=input, compile=compile,
    )
    # input: gpu sees every scene --repeat times per epoch, so that a fast epoch still lasts long
    # enough to time (DataLoader workers start again every epoch, and that is counted)
    paths = sorted(boxes) * (args.repeat if input == "gpu" else 1)
    start = time.perf_counter()
    run = Pretraining(cfg, EvalConfig(every=10**6), images, [], boxes_of=boxes.__getitem__, paths=paths)
    built = time.perf_counter() - start
    return run.fit()[-1]["images_per_s"], built


def input_rates(method: str, images: Path, boxes: dict, args: argparse.Namespace) -> dict[str, float]:
    """Images/s of the input pipelines alone, in this process (one core), over ``--input-batches``
    batches: what one DataLoader worker delivers on each path, and the device-side views of
    ``input: gpu`` (synchronised), which bound the training rate however fast the model is."""
    from selfsup.data.cached_crops import device_batch

    rates = {}
    for input in ("cpu", "gpu"):
        cfg = TrainConfig(method=method, batch_size=args.batch, image_size=args.size, workers=0, device=args.device, input=input)
        run = Pretraining(cfg, EvalConfig(every=10**6), images, [], boxes_of=boxes.__getitem__)
        loader = torch.utils.data.DataLoader(run.dataset, batch_size=args.batch, shuffle=True)
        batches, start = [], time.perf_counter()
        for views, indices in loader:  # input gpu: views are crop boxes
            batches.append((views, indices))
            if len(batches) == args.input_batches:
                break
        rates[f"{method} {input} input, one worker"] = len(batches) * args.batch / (time.perf_counter() - start)
        if input == "gpu":
            generator = torch.Generator().manual_seed(0)
            run.device_views(*device_batch(run.device_images, *batches[0]), generator)  # warm-up
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for boxes, indices in batches:  # the batch gathered from the device cache, then its views
                run.device_views(*device_batch(run.device_images, boxes, indices), generator)
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            rates[f"{method} gpu input, device views"] = len(batches) * args.batch / (time.perf_counter() - start)
    return rates


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


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name() if device.type == "cuda" else "cpu"


def save(args: argparse.Namespace, device: torch.device, results: dict, built: dict, ratios: dict | None = None,
         inputs: dict | None = None) -> None:
    """With ``--json``: the rows so far (written after every row, so a run stopped by a time limit keeps them)."""
    if args.json is None:
        return
    rows = [{"row": key, "images_per_s": value, **({"cache_build_s": built[key]} if key in built and "gpu-input" in key else {})}
            for key, value in results.items()]
    setup = {"device": device_name(device), "batch": args.batch, "size": args.size, "scenes": args.scenes, "workers": args.workers,
             "repeat": args.repeat, "precision": "bf16 autocast" if device.type == "cuda" else "fp32"}
    args.json.write_text(json.dumps({"setup": setup, "training": rows, "ratios": ratios or {}, "input_alone": inputs or {}}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--scenes", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="input: gpu runs see every scene this many times per epoch")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="off", help="torch.compile the model of the ours rows")
    parser.add_argument("--compile-rows", default="all",
                        help="which ours rows --compile on/both compiles, e.g. samclr:gpu (compiling for a CPU takes minutes each)")
    parser.add_argument("--input-batches", type=int, default=4, help="batches timed for the input pipelines alone")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in this process (0: torch's default); "
                        "1 on a busy shared CPU, where two spinning threads make every small op many times slower")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    args = sized_for(args, device)
    if args.threads:
        torch.set_num_threads(args.threads)
    compiles = {"off": (False,), "on": (True,), "both": (False, True)}[args.compile]
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(tmp, SyntheticConfig(scenes=args.scenes, scene_size=256, object_size=(64, 112), eval_train_per_class=1, eval_val_per_class=1))
        config = MaskerConfig("ground_truth", {"masks_root": str(paths.masks)}, min_area=1000)
        masker = config.build()
        boxes = {p: regions_of(masker, config, np.asarray(load_rgb(paths.images / p)), p).boxes for p in list_images(paths.images)}
        results, built = {}, {}
        for compile in compiles:
            for method in ("simclr", "samclr"):
                for input in ("cpu", "gpu"):
                    if compile and args.compile_rows != "all" and f"{method}:{input}" not in args.compile_rows.split(","):
                        continue
                    key = f"ours {method}" + (" gpu-input" if input == "gpu" else "") + (" compiled" if compile else "")
                    results[key], built[key] = ours(method, paths.images, boxes, args, input, compile)
                    save(args, device, results, built)
        results["lightly loop"] = lightly_loop(paths.images, args)
        save(args, device, results, built)
        inputs = {**input_rates("simclr", paths.images, boxes, args), **input_rates("samclr", paths.images, boxes, args)}
    name = device_name(device)
    print(f"ResNet18, {args.size} px views, batch {args.batch}, {args.workers} workers, {args.scenes} scenes of 256 px "
          f"(x{args.repeat} per epoch with input: gpu), on {name}"
          + (", bf16 autocast" if device.type == "cuda" else ", fp32"))
    for key, value in results.items():
        extra = f"   (cache built in {built[key]:.1f} s)" if "gpu-input" in key else ""
        print(f"{key:33s} {value:9.1f} images/s{extra}")
    pairs = [
        ("samclr / simclr (cpu input)", "ours samclr", "ours simclr"),
        ("samclr / simclr (gpu input)", "ours samclr gpu-input", "ours simclr gpu-input"),
        ("simclr gpu-input / cpu input", "ours simclr gpu-input", "ours simclr"),
        ("samclr gpu-input / cpu input", "ours samclr gpu-input", "ours samclr"),
        ("ours simclr / lightly", "ours simclr", "lightly loop"),
        ("simclr gpu-input / lightly", "ours simclr gpu-input", "lightly loop"),
        ("samclr gpu-input / lightly", "ours samclr gpu-input", "lightly loop"),
        ("samclr gpu-input compiled / simclr eager cpu input", "ours samclr gpu-input compiled", "ours simclr"),
    ]
    ratios = {name: results[a] / results[b] for name, a, b in pairs if a in results and b in results}
    for key in ("ours simclr", "ours simclr gpu-input", "ours samclr", "ours samclr gpu-input"):
        if key in results and f"{key} compiled" in results:
            ratios[f"{key[5:]} compiled / eager"] = results[f"{key} compiled"] / results[key]
    for key, value in ratios.items():
        print(f"{key:33s} {value:.3f}x")
    print(f"input pipelines alone, images/s (one core; {args.input_batches} batches):")
    for key, value in inputs.items():
        print(f"  {key:34s} {value:9.1f}")
    for method in ("simclr", "samclr"):
        ratio = inputs[f"{method} gpu input, one worker"] / inputs[f"{method} cpu input, one worker"]
        print(f"  {method} worker, gpu / cpu input      {ratio:.1f}x")
    save(args, device, results, built, ratios, inputs)


if __name__ == "__main__":
    main()
