"""HQ-SAM mask precompute: the reference loop vs our batched generator, same images and weights.

Reference: segment-anything-hq's ``SamAutomaticMaskGenerator`` (its defaults: 64 prompts per
batch, float32), one image at a time, as the reference code ran it. Ours:
``masking.hqsam.BatchedMaskGenerator`` (batched encoder, large prompt batches, IoU filter before
upsampling, GPU post-processing, optional bf16). Both get the same images and the same random
weights (no checkpoint can be downloaded here; pass --checkpoint for real ones).

Two regimes: ``default`` thresholds (pred IoU 0.88, stability 0.95: what the paper ran) and
``zero`` thresholds (every mask survives to NMS: the post-processing-heavy case, and the one where
agreement is checked on many masks). Prints images/s of each, the speed-up, and the agreement
(masks per image, and the IoU of each reference mask with its best match among ours).

    python bench/masks.py --model-type vit_h --images 16 --dtype bfloat16      # on a GPU
    python bench/masks.py --model-type vit_tiny --images 2 --points-per-side 4 --size 128 --dtype float32  # CPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from masking.hqsam import AMGSettings, BatchedMaskGenerator, agreement, build_hqsam, reference_generator  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def photos(n: int, size: int) -> list[np.ndarray]:
    base = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry(), data.cat()]
    out = []
    for i in range(n):
        img = Image.fromarray(base[i % len(base)]).convert("RGB")
        if i >= len(base):  # other crops of the same photos
            w, h = img.size
            img = img.crop((i % 7 * w // 20, i % 5 * h // 20, w - i % 3 * w // 20, h))
        scale = size / max(img.size)
        out.append(np.asarray(img.resize((round(img.width * scale), round(img.height * scale)))))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(args: argparse.Namespace, regime: str, model: torch.nn.Module, images: list[np.ndarray]) -> None:
    zero = regime == "zero"
    settings = AMGSettings(
        points_per_side=args.points_per_side,
        pred_iou_thresh=0.0 if zero else 0.88,
        stability_score_thresh=0.0 if zero else 0.95,
    )
    device = next(model.parameters()).device
    reference = reference_generator(model, settings)
    exact = BatchedMaskGenerator(model, settings, torch.float32, args.image_batch, args.prompt_batch, args.upsample_budget)
    fast = BatchedMaskGenerator(
        model, settings, DTYPES[args.dtype], args.image_batch, args.prompt_batch, args.upsample_budget, compile=args.compile
    )
    reference.generate(images[0])  # warm-up: cuDNN, allocator
    fast.generate(images[: args.image_batch])
    sync(device)
    start = time.perf_counter()
    ref_masks = []
    for image in images:
        records = reference.generate(image)
        ref_masks.append(np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *image.shape[:2]), bool))
    sync(device)
    ref_rate = len(images) / (time.perf_counter() - start)
    start = time.perf_counter()
    ours = [m for i in range(0, len(images), args.image_batch) for m, _ in fast.generate(images[i : i + args.image_batch])]
    sync(device)
    fast_rate = len(images) / (time.perf_counter() - start)
    print(f"\n[{regime} thresholds] pred_iou {settings.pred_iou_thresh}, stability {settings.stability_score_thresh}, {settings.points_per_side}^2 points")
    print(f"  reference loop (float32, 64 prompts/batch): {ref_rate:8.3f} images/s")
    print(f"  ours ({args.dtype}{', compiled' if args.compile else ''}, {args.image_batch} images x {args.prompt_batch} prompts): {fast_rate:8.3f} images/s  -> {fast_rate / ref_rate:.2f}x")
    for name, generator in (("ours float32", exact), (f"ours {args.dtype}", fast)):
        if generator is fast:
            masks = ours
        else:
            masks = [m for i in range(0, len(images), args.image_batch) for m, _ in exact.generate(images[i : i + args.image_batch])]
        stats = [agreement(m, r) for m, r in zip(masks, ref_masks)]
        n_ref = sum(s["reference"] for s in stats)
        n_ours = sum(s["ours"] for s in stats)
        worst = min(s["min_iou"] for s in stats)
        mean = float(np.mean([s["mean_iou"] for s in stats]))
        count = max(abs(s["ours"] - s["reference"]) / max(s["reference"], 1) for s in stats)
        print(f"  agreement, {name:16s}: masks {n_ours} vs {n_ref} (worst image {100 * count:.1f} % off), matched IoU mean {mean:.4f}, min {worst:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-type", default="vit_tiny", choices=["vit_tiny", "vit_b", "vit_l", "vit_h"])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=512, help="long side of the test images")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--dtype", default="bfloat16", choices=list(DTYPES))
    parser.add_argument("--image-batch", type=int, default=4)
    parser.add_argument("--prompt-batch", type=int, default=256)
    parser.add_argument("--upsample-budget", type=float, default=4e9)
    parser.add_argument("--regimes", default="default,zero")
    parser.add_argument("--compile", action="store_true", help="torch.compile the mask decoder (GPU)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    torch.manual_seed(0)
    model = build_hqsam(args.model_type, args.checkpoint, device)
    images = photos(args.images, args.size)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"HQ-SAM {args.model_type} ({'random weights' if args.checkpoint is None else args.checkpoint}) on {name}; {len(images)} images, long side {args.size}")
    for regime in args.regimes.split(","):
        run(args, regime, model, images)


if __name__ == "__main__":
    main()
