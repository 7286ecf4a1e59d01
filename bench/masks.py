"""HQ-SAM mask precompute: the reference loop vs our generator, per module, same images and weights.

Reference: segment-anything-hq's ``SamAutomaticMaskGenerator`` (64 prompts per batch, float32), one
image at a time, as the reference code ran it. Ours: ``masking.hqsam_generator.BatchedMaskGenerator`` with the
decoder restructurings of ``masking.hqsam_decoder`` and the encoder's fused attention switched on one at
a time (``--variants``):

- ``baseline``: none of them (the transformer, upscaling, HQ path and all mask products on every
  prompt, then the IoU filter: the arithmetic of the reference decoder, batched);
- ``iou_first``: upscaling, HQ path and mask product only on prompts above ``pred_iou_thresh``;
- ``fold_hq``: HQ's last convolution folded into the per-prompt hypernetwork vector, one product;
- ``shared_layer0``: layer 0's image-side projections once per image;
- ``fused_attention``: the image encoder's attention through ``scaled_dot_product_attention``
  (``masking.hqsam_encoder``), the decoder as in ``baseline``;
- ``all``: every switch on (the default of the generator).

Printed in one table: milliseconds per image of each stage (encoder, prompt encoder, transformer
layers, final attention, token heads (IoU head, hypernetwork MLPs), upscaling, HQ path, mask products,
post-processing; with ``--compile`` the two compiled halves are timed whole), images/s, the ratio
to the reference, and the agreement of the masks with the reference's (count, and the IoU of each
reference mask with its best match among ours).
Stages of the reference are timed with forward hooks on its modules; its mask products, the
per-prompt repeats of the image embedding and the rest of ``predict_masks`` are the decoder's time
not spent in a hooked module. Post-processing is the rest of each run (filters, upsampling to the
image, stability, boxes, NMS, and the reference's run-length encoding). On a GPU each stage boundary
synchronises, so images/s come from a second pass without the profiler.

Thresholds: with ``--checkpoint``, the reference defaults (pred IoU 0.88, stability 0.95). With
random weights (no checkpoint can be downloaded here) predicted IoUs are ~0.05-0.12 and stability
scores 0 (measured, vit_tiny), so the defaults keep nothing and the mask stages would never run:
``--keep-fraction F`` sets ``pred_iou_thresh`` to the quantile of the first image's predicted IoUs
that keeps a fraction F of the prompts (default 0.5 without a checkpoint), and the stability
threshold is 0 unless given.

    # CPU (this machine), vit_tiny, every variant:
    OMP_NUM_THREADS=2 python bench/masks.py --model-type vit_tiny --device cpu --images 1 --size 256 \\
        --points-per-side 6 --dtype float32 --variants baseline,iou_first,fold_hq,shared_layer0,all
    # GPU, vit_h (the run for bench/gpu_check.sh; with --checkpoint for real weights):
    python bench/masks.py --model-type vit_h --device cuda --images 16 --size 512 --points-per-side 32 \\
        --dtype bfloat16 --compile --variants baseline,all
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from masking.hqsam_generator import AMGSettings, BatchedMaskGenerator, agreement, build_hqsam, reference_generator  # noqa: E402
from masking.hqsam_decoder import DecoderOptions, SplitHQDecoder, untimed  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
VARIANTS = {  # name -> (decoder restructurings, fused encoder attention)
    "baseline": (DecoderOptions.none(), False),
    "iou_first": (DecoderOptions(iou_first=True, fold_hq=False, shared_layer0=False), False),
    "fold_hq": (DecoderOptions(iou_first=False, fold_hq=True, shared_layer0=False), False),
    "shared_layer0": (DecoderOptions(iou_first=False, fold_hq=False, shared_layer0=True), False),
    "fused_attention": (DecoderOptions.none(), True),
    "all": (DecoderOptions(), True),
}
STAGES = (
    "encoder",
    "prompt encoder",
    "transformer layer 0",
    "transformer layer 1",
    "final attention",
    "token heads",
    "upscaling",
    "HQ path",
    "mask products",
    "compiled transformer",  # --compile: the transformer's layers in one timed call
    "compiled masks",  # --compile: upscaling, HQ path and mask products in one timed call
    "post-processing",
)
REST = "post-processing"


class StageProfile:
    """Seconds per stage name; a context manager per stage, synchronising the GPU at its edges."""

    def __init__(self, device: torch.device, clock=time.perf_counter):  # noqa: ANN001
        self.device = device
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def __call__(self, name: str):  # noqa: ANN204
        profile = self

        class _Stage:
            def __enter__(self):  # noqa: ANN204
                profile._sync()
                self.start = profile.clock()

            def __exit__(self, *exc):  # noqa: ANN002, ANN204
                profile._sync()
                profile.seconds[name] += profile.clock() - self.start

        return _Stage()


def hook_reference(model: torch.nn.Module, profile: StageProfile) -> list:
    """Forward hooks timing the reference's modules into ``profile`` (the decoder's rest computed later)."""
    d = model.mask_decoder
    groups = {
        "encoder": [model.image_encoder],
        "prompt encoder": [model.prompt_encoder],
        "transformer layer 0": [d.transformer.layers[0]],
        "transformer layer 1": [d.transformer.layers[1]],
        "transformer": [d.transformer],
        "token heads": [d.iou_prediction_head, d.hf_mlp, *d.output_hypernetworks_mlps],
        "upscaling": [d.output_upscaling],
        "HQ path": [d.embedding_encoder, d.compress_vit_feat, d.embedding_maskfeature],
        "decoder": [d],
    }
    handles = []
    for name, modules in groups.items():
        for module in modules:
            stage = profile(name)
            handles.append(module.register_forward_pre_hook(lambda m, a, s=stage: s.__enter__()))
            handles.append(module.register_forward_hook(lambda m, a, o, s=stage: s.__exit__()))
    return handles


def reference_stages(seconds: dict[str, float]) -> dict[str, float]:
    s = dict(seconds)
    transformer, decoder = s.pop("transformer", 0.0), s.pop("decoder", 0.0)
    s["final attention"] = transformer - s.get("transformer layer 0", 0) - s.get("transformer layer 1", 0)
    s["mask products"] = decoder - transformer - sum(s.get(k, 0) for k in ("token heads", "upscaling", "HQ path"))
    return s


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


def iou_quantile(model: torch.nn.Module, image: np.ndarray, points_per_side: int, keep: float) -> float:
    """The predicted-IoU threshold that keeps a fraction ``keep`` of the prompts on ``image``."""
    from segment_anything_hq.utils.amg import build_point_grid
    from segment_anything_hq.utils.transforms import ResizeLongestSide

    device = next(model.parameters()).device
    t = ResizeLongestSide(model.image_encoder.img_size)
    with torch.no_grad():
        x = model.preprocess(torch.as_tensor(t.apply_image(image)).permute(2, 0, 1).float()[None].to(device))
        features, _ = model.image_encoder(x)
        points = build_point_grid(points_per_side) * np.array(image.shape[:2])[None, ::-1]
        pts = torch.as_tensor(t.apply_coords(points, image.shape[:2]), device=device, dtype=torch.float32)
        sparse, dense = model.prompt_encoder(points=(pts[:, None], torch.ones(len(pts), 1, device=device)), boxes=None, masks=None)
        decoder = SplitHQDecoder(model.mask_decoder)
        hs, _ = decoder.tokens(features, model.prompt_encoder.get_dense_pe(), sparse, dense)
        iou, _ = decoder.heads(hs)
    return float(torch.quantile(iou, 1 - keep))


def masks_of(records: list[dict], image: np.ndarray) -> np.ndarray:
    return np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *image.shape[:2]), bool)


def timed_pass(run, device: torch.device, clock=time.perf_counter):  # noqa: ANN001, ANN201
    """``run()``'s result and its seconds on ``clock`` (the GPU synchronised at both ends)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = clock()
    out = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-type", default="vit_tiny", choices=["vit_tiny", "vit_b", "vit_l", "vit_h"])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=512, help="long side of the test images")
    parser.add_argument("--points-per-side", type=int, default=32, help="the reference default")
    parser.add_argument("--pred-iou-thresh", type=float, default=None, help="default: 0.88 with a checkpoint, else from --keep-fraction")
    parser.add_argument("--keep-fraction", type=float, default=None, help="pred_iou_thresh keeping this fraction of prompts (default 0.5 without checkpoint)")
    parser.add_argument("--stability-score-thresh", type=float, default=None, help="default: 0.95 with a checkpoint, else 0")
    parser.add_argument("--crop-n-layers", type=int, default=0)
    parser.add_argument("--box-nms-thresh", type=float, default=0.7, help="the reference's default; 1.0 keeps every mask (agreement on many masks)")
    parser.add_argument("--repeats", type=int, default=1, help="passes of every column, interleaved; the fastest of each is printed")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--image-batch", type=int, default=4)
    parser.add_argument("--prompt-batch", type=int, default=256)
    parser.add_argument("--upsample-budget", type=float, default=4e9)
    parser.add_argument("--variants", default="baseline,all", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--compile", action="store_true", help="torch.compile our decoder's two halves (GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--clock", default="auto", choices=["auto", "wall", "process"],
        help="process: this process's CPU time (stable on a shared CPU; use OMP_NUM_THREADS=1); auto: process on CPU, wall on GPU",
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    clock = time.process_time if args.clock == "process" or (args.clock == "auto" and device.type == "cpu") else time.perf_counter
    torch.manual_seed(0)
    model = build_hqsam(args.model_type, args.checkpoint, device)
    images = photos(args.images, args.size)
    real = args.checkpoint is not None
    if args.pred_iou_thresh is not None:
        pred_iou = args.pred_iou_thresh
    elif real and args.keep_fraction is None:
        pred_iou = 0.88
    else:
        pred_iou = iou_quantile(model, images[0], args.points_per_side, args.keep_fraction or 0.5)
    stability = args.stability_score_thresh if args.stability_score_thresh is not None else (0.95 if real else 0.0)
    settings = AMGSettings(
        points_per_side=args.points_per_side, pred_iou_thresh=pred_iou, stability_score_thresh=stability, crop_n_layers=args.crop_n_layers,
        box_nms_thresh=args.box_nms_thresh,
    )
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"HQ-SAM {args.model_type} ({'random weights' if not real else args.checkpoint}) on {name}; {len(images)} images, long side {args.size}")
    print(f"clock: {'process CPU time' if clock is time.process_time else 'wall'}; fastest of {args.repeats} interleaved passes per column")
    print(f"settings: {args.points_per_side}^2 points, pred_iou_thresh {pred_iou:.4f}, stability_score_thresh {stability}, crop_n_layers {args.crop_n_layers}, box_nms_thresh {args.box_nms_thresh}; ours: {args.dtype}{', compiled' if args.compile else ''}, {args.image_batch} images x {args.prompt_batch} prompts")

    n = len(images)
    columns: dict[str, dict[str, float]] = {}
    rates: dict[str, float] = {}
    reference = reference_generator(model, settings)
    generators = {
        variant: BatchedMaskGenerator(
            model, settings, DTYPES[args.dtype], args.image_batch, args.prompt_batch, args.upsample_budget,
            compile=args.compile, options=VARIANTS[variant][0], fused_attention=VARIANTS[variant][1],
        )
        for variant in variants
    }
    if device.type == "cuda":  # warm-up: cuDNN, allocator, compilation
        reference.generate(images[0])
        for gen in generators.values():
            gen.generate(images[: args.image_batch])

    def keep_fastest(column: str, stages: dict[str, float], total: float, rate_total: float) -> None:
        stages[REST] = total - sum(v for k, v in stages.items() if k != REST)
        if column not in rates or n / rate_total > rates[column]:
            rates[column], columns[column] = n / rate_total, stages

    agreements = {}
    for _ in range(args.repeats):  # columns interleaved, the fastest repeat of each kept
        profile = StageProfile(device, clock)
        untimed_total = None
        if device.type == "cuda":  # images/s without the hooks' synchronisation
            _, untimed_total = timed_pass(lambda: [reference.generate(im) for im in images], device, clock)
        handles = hook_reference(model, profile)
        records, total = timed_pass(lambda: [reference.generate(im) for im in images], device, clock)
        for h in handles:
            h.remove()
        ref_masks = [masks_of(r, im) for r, im in zip(records, images)]
        keep_fastest("reference", reference_stages(profile.seconds), total, untimed_total or total)
        for variant, gen in generators.items():
            run = lambda: [m for i in range(0, n, args.image_batch) for m, _ in gen.generate(images[i : i + args.image_batch])]  # noqa: E731
            if device.type == "cuda":
                gen.timer = untimed
                _, untimed_total = timed_pass(run, device, clock)
            gen.timer = profile = StageProfile(device, clock)
            ours, total = timed_pass(run, device, clock)
            keep_fastest(variant, dict(profile.seconds), total, untimed_total or total)
            stats = [agreement(m, r) for m, r in zip(ours, ref_masks)]
            agreements[variant] = (
                sum(s["ours"] for s in stats), sum(s["reference"] for s in stats), min(s["min_iou"] for s in stats), float(np.mean([s["mean_iou"] for s in stats]))
            )

    names = list(columns)
    width = max(14, *(len(v) + 2 for v in names))
    print(f"\nms per image{'':12s}" + "".join(f"{v:>{width}s}" for v in names))
    for stage in STAGES:
        print(f"  {stage:22s}" + "".join(f"{1000 * columns[v].get(stage, 0.0) / n:>{width}.1f}" for v in names))
    print(f"  {'total':22s}" + "".join(f"{1000 / rates[v]:>{width}.1f}" for v in names))
    print(f"images/s{'':16s}" + "".join(f"{rates[v]:>{width}.3f}" for v in names))
    print(f"vs reference{'':12s}" + "".join(f"{rates[v] / rates['reference']:>{width - 1}.2f}x" for v in names))
    if "baseline" in rates:
        print(f"vs baseline{'':13s}" + "".join(f"{rates[v] / rates['baseline']:>{width - 1}.2f}x" for v in names))
    print("\nagreement with the reference (masks ours vs reference; IoU of each reference mask with its best match: min, mean)")
    for variant, (ours_n, ref_n, worst, mean) in agreements.items():
        print(f"  {variant:16s} {ours_n} vs {ref_n}, min {worst:.4f}, mean {mean:.4f}")


if __name__ == "__main__":
    main()
