"""View-pair purity: how often a trial's two views show the same object, measured before training.

SAMCLR's premise (Missaoui et al., "Contrastive pre-training on complex scenes using SAM for view
sampling", NeurIPS 2023 SSL workshop, Sec. 1 and 3) is that random crops of a scene often hold no
object or parts of two, so the positive pair of SimCLR does not share one object, and that views
drawn inside one region do. Given a dataset's instance masks, that premise can be checked per
masker, ``c``, ``min_area`` and crop setting without training anything:

1. draw view boxes exactly as a trial draws them (``masking.crops.CropSampler.crop_boxes``, the
   trial's own sampler: region pick, box enlargement by ``c``, each ``CropSpec``'s scale, ratio and
   count), ``draws`` times per image;
2. for every view, count the pixels of each instance inside its box (pixel centres inside the
   box; per-instance summed-area tables make that four lookups per view and instance, vectorised
   over all draws of an image);
3. a view's *dominant instance* is the instance covering most of its pixels (background is not an
   instance; a view without any instance pixel has none); a view is *mostly background* when
   background covers more than ``background`` (default 0.5) of it. The two are reported apart: a
   region view may be mostly background around its object (a box enlarged by ``c`` around a round
   object is half background) and still show that object alone;
4. over every pair of views of a draw (SimCLR: the one pair; DINO's 2 + 6 crops: all 28 pairs):
   **same object** = both views have a dominant instance and it is the same one, **same class** =
   both have one and their classes agree (when the dataset gives classes).

Reported (``Purity``): P(same object), P(same class), P(a view is mostly background), regions per
image and the share of images that fall back to the whole image (no region), for a region store,
or ``None`` for the last two under ``random`` sampling (the SimCLR baseline).

No anchor library measures this: solo-learn, lightly, VISSL and stable-pretraining sample views but
never score them (lightly's ``DetConSTransform`` computes Felzenszwalb masks on the fly and does not
check them). CPU only, numpy and torch's RNG; the sampler's draws are the Python part (about 30 us
a draw), the pixel counting is vectorised.

    python -m masking.purity --masks data/fashion_scenes/scenes/masks --store runs/regions/X.parquet \
        --method samclr --param min_scale=0.2 --c 1.3 --classes data/fashion_scenes/scenes/classes.json
    python -m masking.purity --masks data/fashion_scenes/scenes/masks --sampling random --param min_scale=0.2

Where a dataset has no instance masks, a store whose masker kept its masks (``keep_masks``, e.g.
HQ-SAM's) stands in for them (``--store`` without ``--masks``, ``scenes_from_store``): each pixel
belongs to the smallest kept region covering it. That measures how often both views show the same
*region of that masker*, an upper bound on the object purity the masker would reach if its regions
were objects: useful to compare ``c``, crop scales and methods on a user's own data, not maskers.

    python -m masking.purity --store runs/regions/X.parquet --method samclr --c 1.3
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from masking.crops import CropSampler, CropSpec
from samdata.image_files import list_images
from samdata.instance_masks import mask_file, read_ids

DEFAULT_DRAWS = 32
"""Draws (one view set each) per image."""
MAX_TABLE_ENTRIES = 32_000_000
"""Above this many summed-area-table entries (labels x pixels), the id map is subsampled by an integer stride."""


class PurityError(ValueError):
    """Bad input to the purity measurement; the message is one line."""


@dataclass(frozen=True)
class Scene:
    """One image for purity: its instance ids, its region boxes and, if known, its instances' classes.

    ``ids``: (H, W) instance ids at the image's resolution, 0 = background. ``boxes``: the store's
    kept region boxes (K, 4) xyxy in image pixels, or None under ``random`` sampling.
    ``classes``: class of instance id k at index k - 1, or None.
    """

    path: str
    ids: np.ndarray
    boxes: np.ndarray | None = None
    classes: Sequence[int] | None = None


@dataclass(frozen=True)
class Purity:
    """What ``view_pair_purity`` measured (probabilities in [0, 1])."""

    images: int
    draws: int
    pairs: int
    same_object: float
    """P(both views' dominant instance is the same object)."""
    same_class: float | None
    """P(both views' dominant instances are of the same class); None without classes."""
    background_view: float
    """P(a view is mostly background)."""
    regions_per_image: float | None
    """Mean kept regions per image; None under ``random`` sampling."""
    fallback: float | None
    """Share of images with no region (their views span the whole image); None under ``random``."""

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def line(self) -> str:
        """One human-readable line."""

        def pct(v: float | None) -> str:
            return "–" if v is None else f"{100 * v:.1f} %"

        regions = "–" if self.regions_per_image is None else f"{self.regions_per_image:.2f}"
        return (
            f"same object {pct(self.same_object)}, same class {pct(self.same_class)}, mostly-background views "
            f"{pct(self.background_view)}, regions/image {regions}, whole-image fallback {pct(self.fallback)} "
            f"({self.images} images, {self.pairs} pairs)"
        )


def _tables(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels present (background 0 first), their summed-area tables (L, h+1, w+1) and the stride."""
    stride = 1
    labels = np.unique(ids)
    if labels[0] != 0:
        labels = np.concatenate([[0], labels])
    while len(labels) * (ids.shape[0] // stride + 1) * (ids.shape[1] // stride + 1) > MAX_TABLE_ENTRIES:
        stride += 1
    small = ids[stride // 2 :: stride, stride // 2 :: stride] if stride > 1 else ids
    index = np.searchsorted(labels, small)
    onehot = np.zeros((len(labels), small.shape[0] + 1, small.shape[1] + 1), np.int32)
    onehot[index, np.arange(small.shape[0])[:, None] + 1, np.arange(small.shape[1])[None, :] + 1] = 1
    return labels, onehot.cumsum(1).cumsum(2), stride


def label_counts(ids: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels present in ``ids`` (0 first) and, per box (..., 4 float xyxy), the pixels of each label
    whose centre lies inside the box: (..., L). Pixel (row i, column j) has its centre at
    (j + 0.5, i + 0.5). Large id maps are subsampled by an integer stride (``MAX_TABLE_ENTRIES``)."""
    labels, table, stride = _tables(np.asarray(ids))
    h, w = table.shape[1] - 1, table.shape[2] - 1
    b = np.asarray(boxes, np.float64) / stride
    c0 = np.clip(np.ceil(b[..., 0] - 0.5), 0, w).astype(np.int64)
    r0 = np.clip(np.ceil(b[..., 1] - 0.5), 0, h).astype(np.int64)
    c1 = np.clip(np.ceil(b[..., 2] - 0.5), 0, w).astype(np.int64)
    r1 = np.clip(np.ceil(b[..., 3] - 0.5), 0, h).astype(np.int64)
    c1, r1 = np.maximum(c1, c0), np.maximum(r1, r0)
    counts = table[:, r1, c1] - table[:, r0, c1] - table[:, r1, c0] + table[:, r0, c0]  # (L, ...)
    return labels, np.moveaxis(counts, 0, -1)


def _draw_boxes(sampler: CropSampler, width: int, height: int, boxes: np.ndarray | None, draws: int) -> np.ndarray:
    """(draws, views, 4) crop boxes drawn with the trial's sampler."""
    return np.asarray([sampler.crop_boxes(width, height, boxes) for _ in range(draws)], np.float64)


def view_pair_purity(
    scenes: Iterable[Scene],
    crops: Sequence[CropSpec],
    sampling: str = "regions",
    c: float = 1.3,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    background: float = 0.5,
) -> Purity:
    """View-pair purity of ``scenes`` under the sampler ``CropSampler(crops, sampling, c)``.

    ``draws`` view sets per image, every pair of views of a set scored (see the module docstring).
    Torch's global RNG is seeded with ``seed`` inside and restored afterwards, so the result is
    reproducible and the caller's random state is untouched.
    """
    if draws < 1:
        raise PurityError(f"draws must be >= 1, got {draws}")
    sampler = CropSampler(crops, sampling, c)
    views = sum(spec.n for spec in crops)
    if views < 2:
        raise PurityError(f"the crops give {views} view(s) per draw; a pair needs at least 2")
    iu, ju = np.triu_indices(views, k=1)
    same_object = same_class = background_views = 0.0
    pairs = view_count = images = regions = fallbacks = 0
    with_classes = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for scene in scenes:
            ids = np.asarray(scene.ids)
            if ids.ndim != 2:
                raise PurityError(f"{scene.path}: instance ids must be a single-channel (H, W) map, got shape {ids.shape}")
            height, width = ids.shape
            boxes = None if sampling == "random" or scene.boxes is None else np.asarray(scene.boxes).reshape(-1, 4)
            if sampling == "regions":
                k = 0 if boxes is None else len(boxes)
                regions += k
                fallbacks += k == 0
            crop = _draw_boxes(sampler, width, height, boxes, draws)  # (D, V, 4)
            labels, counts = label_counts(ids, crop)  # (D, V, L)
            total = counts.sum(-1)
            objects_in = counts[..., 1:]
            dominant = np.zeros(total.shape, np.int64)  # (D, V): 0 = no instance in the view
            if len(labels) > 1:  # ties between instances go to the lower id
                dominant = np.where(objects_in.sum(-1) > 0, labels[1:][objects_in.argmax(-1)], 0)
            a, b = dominant[:, iu], dominant[:, ju]
            objects = (a != 0) & (b != 0)
            same_object += float((objects & (a == b)).sum())
            if scene.classes is None:
                with_classes = False
            elif with_classes:
                lookup = np.full(int(labels.max()) + 1, -1, np.int64)
                for instance in labels[labels != 0]:
                    if instance - 1 >= len(scene.classes):
                        raise PurityError(f"{scene.path}: instance id {instance} has no class ({len(scene.classes)} given)")
                    lookup[instance] = scene.classes[instance - 1]
                same_class += float((objects & (lookup[a] == lookup[b])).sum())
            background_views += float((counts[..., 0] > background * total).sum() + (total == 0).sum())
            pairs += a.size
            view_count += dominant.size
            images += 1
    if images == 0:
        raise PurityError("no images to measure")
    return Purity(
        images=images,
        draws=images * draws,
        pairs=pairs,
        same_object=same_object / pairs,
        same_class=same_class / pairs if with_classes else None,
        background_view=background_views / view_count,
        regions_per_image=regions / images if sampling == "regions" else None,
        fallback=fallbacks / images if sampling == "regions" else None,
    )


def read_classes(file: str | Path) -> dict[str, list[int]]:
    """A classes file: JSON ``{relative image path: [class of instance 1, class of instance 2, ...]}``
    (the synthetic scene generator writes ``scenes/classes.json``)."""
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError) as err:
        raise PurityError(f"cannot read classes file {file}: {err}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise PurityError(f"classes file {file} must map image paths to lists of classes")
    return data


def subsample(paths: Sequence[str], max_images: int | None) -> list[str]:
    """At most ``max_images`` of ``paths`` (sorted), evenly spaced; all of them when None."""
    paths = sorted(paths)
    if max_images is None or len(paths) <= max_images:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).round().astype(int)]


def scenes_from_store(store, paths: Sequence[str] | None = None, max_images: int | None = None) -> list[Scene]:
    """Scenes whose instances are a ``keep_masks`` store's own regions: each pixel the smallest kept
    region covering it (regions are stored largest first), 0 where none does; the views use the
    store's boxes. Rows with an error are left out, as training leaves them out."""
    if not store.has_masks:
        raise PurityError("the region store holds no masks (its masker ran without keep_masks): give --masks, instance masks of the images")
    paths = [p for p in (paths if paths is not None else store.paths) if p in store and not store[p].error]
    out = []
    for path in subsample(paths, max_images):
        row = store[path]
        ids = np.zeros((row.height, row.width), np.int64)
        for k, mask in enumerate(store.masks(path), start=1):
            ids[mask] = k
        out.append(Scene(path, ids, row.regions.boxes))
    if not out:
        raise PurityError("no readable images in the region store")
    return out


def load_scenes(
    masks_root: str | Path,
    paths: Sequence[str] | None = None,
    store=None,
    classes: Mapping[str, Sequence[int]] | None = None,
    max_images: int | None = None,
) -> list[Scene]:
    """Scenes for ``view_pair_purity``: instance masks under ``masks_root`` at each image's relative
    path with a ``.png`` suffix (the ground-truth masker's layout).

    ``store``: a ``masking.store.RegionStore`` whose boxes the views use; its rows with an error are
    left out, as the sweep leaves them out of training. ``paths``: the images (default: the store's,
    else every mask PNG under ``masks_root``). ``classes``: ``read_classes``'s mapping, or None.
    """
    root = Path(masks_root)
    if not root.is_dir():
        raise PurityError(f"masks folder {root} does not exist")
    if paths is None:
        paths = store.paths if store is not None else list_images(root, (".png",))
    if store is not None:
        paths = [p for p in paths if p in store and not store[p].error]
    out = []
    for path in subsample(paths, max_images):
        file = mask_file(root, path)
        try:
            ids = read_ids(file)
        except (FileNotFoundError, ValueError) as err:
            raise PurityError(f"{err} (image {path})") from None
        boxes = None
        if store is not None:
            row = store[path]
            if (row.height, row.width) != ids.shape:
                raise PurityError(f"instance mask {file} is {ids.shape[1]}x{ids.shape[0]}, the store's image {path} is {row.width}x{row.height}")
            boxes = row.regions.boxes
        cls = None if classes is None else classes.get(path)
        if classes is not None and cls is None:
            raise PurityError(f"the classes file has no entry for image {path}")
        out.append(Scene(path, ids, boxes, cls))
    if not out:
        raise PurityError(f"no images with instance masks under {root}")
    return out


def method_crops(method: str, params: Mapping[str, object], image_size: int, preset: str = "lightly") -> tuple[CropSpec, ...]:
    """A method's views as a trial of ``selfsup`` draws them (imported here only, for the CLI and
    the orchestrator: the measurement itself takes ``CropSpec``s)."""
    from selfsup.methods import method_spec

    spec = method_spec(method)
    known = {f for f in spec.settings.__dataclass_fields__}
    return spec.crops(spec.resolve(preset, {k: v for k, v in params.items() if k in known}), image_size)


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m masking.purity", description=__doc__.splitlines()[0])
    parser.add_argument("--masks", help="folder of instance-id PNGs (0 = background) mirroring the images; without it, the --store's own masks (keep_masks)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--store", help="region store (.parquet) whose boxes the views are drawn in")
    group.add_argument("--sampling", choices=["random"], help="random: whole-image views (the SimCLR baseline)")
    parser.add_argument("--classes", help="JSON {image path: [class of instance 1, ...]} for P(same class)")
    parser.add_argument("--method", default="simclr", help="the method whose crops are drawn (default simclr)")
    parser.add_argument("--preset", default="lightly", choices=["lightly", "paper"])
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a method setting, e.g. min_scale=0.2")
    parser.add_argument("--image-size", type=int, default=128, help="view size (only names the crops; boxes do not depend on it)")
    parser.add_argument("--c", type=float, default=1.3, help="region-box enlargement (default 1.3)")
    parser.add_argument("--draws", type=int, default=DEFAULT_DRAWS, help=f"draws per image (default {DEFAULT_DRAWS})")
    parser.add_argument("--max-images", type=int, help="measure at most this many images (evenly spaced)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        params = {}
        for item in args.param:
            key, sep, value = item.partition("=")
            if not sep:
                raise PurityError(f"--param {item!r}: expected KEY=VALUE")
            params[key] = _value(value)
        try:
            crops = method_crops(args.method, params, args.image_size, args.preset)
        except ValueError as err:
            raise PurityError(f"--method {args.method}: {err}") from None
        if args.c < 1:
            raise PurityError(f"--c must be >= 1, got {args.c}")
        store = None
        if args.store:
            from masking.store import RegionStore

            try:
                store = RegionStore.load(args.store, masks=args.masks is None)
            except (FileNotFoundError, OSError, ValueError) as err:
                raise PurityError(f"cannot read region store {args.store}: {str(err).splitlines()[0]}") from None
        classes = read_classes(args.classes) if args.classes else None
        if args.masks is None:
            if store is None:
                raise PurityError("--sampling random needs --masks (instance masks of the images)")
            if classes is not None:
                raise PurityError("--classes needs --masks: a store's own regions have no classes")
            scenes = scenes_from_store(store, max_images=args.max_images)
        else:
            scenes = load_scenes(args.masks, store=store, classes=classes, max_images=args.max_images)
        result = view_pair_purity(scenes, crops, "regions" if store is not None else "random", args.c, args.draws, args.seed)
    except PurityError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict()) if args.json else result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
