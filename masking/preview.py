"""``python -m masking.preview``: what a masker keeps and what views it gives, in one PNG.

Like Figure 1 of the SAMCLR paper: for a few images, the kept regions (solid boxes), their boxes
enlarged by ``c`` (dashed), and a handful of view pairs drawn by the ``regions`` sampler
(``masking.crops``: the crops a trial cuts, before training's colour augmentations).

    python -m masking.preview data/synthetic/scenes/images --masker felzenszwalb --min-area 200
    python -m masking.preview photo1.jpg photo2.jpg --masker hqsam \\
        --params '{"model_type": "vit_h", "checkpoint": "sam_hq_vit_h.pth"}' --out preview.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from masking.crops import CropSampler, CropSpec, resized_crop
from masking.maskers import MASKERS, Masker, MaskerConfig, regions_of
from masking.regions import PAPER_C, PAPER_MIN_AREA, Regions, enlarge_boxes
from masking.rle import decode
from samdata.image_files import list_images


def _images(inputs: list[str], limit: int) -> list[tuple[Path, str]]:
    """(root, relative path) of up to ``limit`` images from files and folders."""
    out: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            out += [(item, rel) for rel in list_images(item)]
        elif item.is_file():
            out.append((item.parent, item.name))
        else:
            raise FileNotFoundError(f"preview: {item} does not exist")
    if not out:
        raise FileNotFoundError(f"preview: no images in {', '.join(inputs)}")
    return out[:limit]


def render(
    images: list[tuple[Path, str]], config: MaskerConfig, c: float, pairs: int, size: int, out: Path, seed: int = 0, masker: Masker | None = None
) -> Path:
    """Run the masker on ``images`` (root, relative path) and draw the result (``draw``)."""
    torch.manual_seed(seed)  # HQ-SAM without a checkpoint has random weights
    masker = masker if masker is not None else config.build()
    shown = []
    for root, rel in images:
        image = open_rgb(root / rel)
        shown.append((rel, image, regions_of(masker, config, np.asarray(image), rel)))
    title = f"masker {config.name}, min area {config.min_area} px, c = {c} (solid: kept regions, dashed: enlarged)"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(draw(shown, c, pairs, size, title, seed))
    return out


def open_rgb(path: Path):  # noqa: ANN201 - PIL is imported lazily
    """An image file as an RGB PIL image, turned upright as its EXIF says (as the trials read it)."""
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        return ImageOps.exif_transpose(opened).convert("RGB")


def draw(shown: list[tuple[str, object, Regions]], c: float, pairs: int, size: int, title: str, seed: int = 0) -> bytes:
    """The preview PNG of images whose regions are known: per row (name, RGB PIL image, kept
    regions) the image with its kept regions (solid boxes, and their masks filled where the regions
    carry them: a ``keep_masks`` store) and their boxes enlarged by ``c``
    (dashed), then ``pairs`` view pairs drawn by the ``regions`` sampler inside them (cut and
    resized as a trial cuts them; without colour augmentations, which are training's: ``selfsup.augment``).
    Used by ``render`` (regions from a masker) and by the sweep (regions from a region store)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    torch.manual_seed(seed)
    sampler = CropSampler((CropSpec(2, size),), "regions", c)
    fig, axes = plt.subplots(len(shown), 1 + 2 * pairs, figsize=(3 * (1 + 2 * pairs), 3 * len(shown)), squeeze=False)
    colours = plt.cm.tab10.colors
    for row, (rel, image, regions) in zip(axes, shown):
        enlarged = enlarge_boxes(regions.boxes, c, image.width, image.height)
        row[0].imshow(np.asarray(image))
        if regions.rle is not None and len(regions):  # the masks themselves, where the store kept them
            masks = decode(regions.rle, image.height, image.width)
            overlay = np.zeros((image.height, image.width, 4))
            for k in range(len(masks)):  # largest first (the selection's order): smaller ones stay visible on top
                overlay[masks[k]] = (*colours[k % len(colours)], 0.45)
            row[0].imshow(overlay)
        row[0].set_title(f"{rel}: {len(regions)} regions", fontsize=8)
        for k, (box, big) in enumerate(zip(regions.boxes, enlarged)):
            colour = colours[k % len(colours)]
            row[0].add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color=colour, lw=1.5))
            row[0].add_patch(Rectangle(big[:2], big[2] - big[0], big[3] - big[1], fill=False, color=colour, lw=1, ls="--"))
        for p in range(pairs):
            boxes = sampler.crop_boxes(image.width, image.height, regions.boxes)
            for v, box in enumerate(boxes):
                ax = row[1 + 2 * p + v]
                ax.imshow(np.asarray(resized_crop(image, box, size)))
                ax.set_title(f"pair {p + 1}, view {v + 1}", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m masking.preview", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="image files or folders")
    parser.add_argument("--masker", default="felzenszwalb", choices=sorted(MASKERS))
    parser.add_argument("--params", default="{}", help="masker parameters as JSON")
    parser.add_argument("--min-area", type=int, default=PAPER_MIN_AREA)
    parser.add_argument("--c", type=float, default=PAPER_C)
    parser.add_argument("--images", type=int, default=4, help="how many images")
    parser.add_argument("--pairs", type=int, default=3, help="view pairs per image")
    parser.add_argument("--size", type=int, default=128, help="view size in pixels")
    parser.add_argument("--out", default="preview.png")
    args = parser.parse_args(argv)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as err:
        parser.error(f"--params is not JSON ({err}): {args.params!r}; e.g. --params '{{\"points_per_side\": 8}}'")
    if not isinstance(params, dict):
        parser.error(f"--params must be a JSON object of the masker's parameters, got {args.params!r}")
    config = MaskerConfig(args.masker, params, min_area=args.min_area)
    try:
        images = _images(args.inputs, args.images)
        torch.manual_seed(0)  # render's seed: HQ-SAM without a checkpoint has random weights
        masker = config.build()
    except (ValueError, TypeError, FileNotFoundError) as err:  # a wrong parameter or input: one line
        parser.error(str(err).splitlines()[0] if str(err) else type(err).__name__)
    out = render(images, config, args.c, args.pairs, args.size, Path(args.out), masker=masker)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
