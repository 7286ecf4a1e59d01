"""Built-in synthetic scenes: the miniature of "pretrain on scenes, evaluate on objects".

SAMCLR's premise (paper, Sec. 1) is that random crops of a complex scene often hold no object, or
parts of two, so SimCLR's two views may not share one object; views drawn inside one region do.
This generator makes that situation with no download: canvases holding several objects of K
classes on a cluttered background of small distractor shapes, lines and noise, plus a labelled
single-object set for evaluation. The objects are drawn shapes (``items: shapes``: random colours,
stripes and rotation, so only the shape tells the class) or real product photos
(``items: fashion-mnist``, see ``samdata.fashion_items``).

Everything is written once, deterministically from a seed, as ordinary files, so it travels the
same path a user's own folders travel::

    root/scenes/images/00000.png   pretraining scenes (RGB)
    root/scenes/masks/00000.png    instance ids, 0 = background (for the ground_truth masker)
    root/scenes/classes.json       {"00000.png": [class of instance 1, class of instance 2, ...]}
                                   (for P(same class) in ``masking.purity``)
    root/eval/{train,val}/<class>/00000.png   single-object images, ImageNette layout
    root/synthetic.json            the generator's parameters; same parameters -> nothing rewritten
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from samdata.fashion_items import CLASSES as FASHION_CLASSES
from samdata.fashion_items import fashion_items

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "ell", "crescent", "arrow")
"""The object classes: a shape each; colour and stripes are random, so only the shape tells the class."""

_KINDS = {"scene": 0, "train": 1, "val": 2}
ITEMS = {"shapes": SHAPES, "fashion-mnist": FASHION_CLASSES}
"""Object kinds and their classes."""


@dataclass(frozen=True)
class SyntheticConfig:
    num_classes: int = 10
    scenes: int = 512
    scene_size: int = 128
    objects_per_scene: tuple[int, int] = (2, 4)
    object_size: tuple[int, int] = (32, 56)
    eval_size: int = 64
    eval_train_per_class: int = 50
    eval_val_per_class: int = 20
    clutter: int = 40
    seed: int = 0
    items: str = "shapes"
    """The objects: ``shapes`` (drawn) or ``fashion-mnist`` (photos read from ``items_root``)."""
    items_root: str | None = None
    """For ``fashion-mnist``: the folder ``python -m samdata prepare fashion-mnist`` wrote."""
    background_saturation: float = 1.0
    """Colour of the cluttered background, 0 (grey) to 1 (fully coloured, as drawn). Below 1, the
    objects are the only strongly coloured things in a scene, so matching two views by the
    background's colours is no longer an easy way out of the instance task."""

    def __post_init__(self) -> None:
        if self.items not in ITEMS:
            raise ValueError(f"synthetic: unknown items {self.items!r}; known: {', '.join(ITEMS)}")
        if (self.items == "fashion-mnist") != (self.items_root is not None):
            raise ValueError("synthetic: items_root is needed by, and only by, items: fashion-mnist")
        if not 2 <= self.num_classes <= len(ITEMS[self.items]):
            raise ValueError(f"synthetic: num_classes must be in [2, {len(ITEMS[self.items])}], got {self.num_classes}")
        if not 0.0 <= self.background_saturation <= 1.0:
            raise ValueError(f"synthetic: background_saturation must be in [0, 1], got {self.background_saturation}")
        if self.object_size[1] > self.scene_size:
            raise ValueError("synthetic: object_size must fit in scene_size")

    @property
    def classes(self) -> tuple[str, ...]:
        return ITEMS[self.items][: self.num_classes]


def _shape_polygons(shape: str, cx: float, cy: float, r: float, angle: float) -> list[list[tuple[float, float]]]:
    """Outer polygon(s) of a shape of radius ``r``; ring and crescent are drawn as two polygons
    where the second one is cut out (see ``_shape_mask``)."""

    def rot(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        ca, sa = math.cos(angle), math.sin(angle)
        return [(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in points]

    def regular(n: int, radius: float, phase: float = 0.0) -> list[tuple[float, float]]:
        return [(radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]

    if shape == "circle":
        return [rot(regular(48, r))]
    if shape == "square":
        return [rot(regular(4, r, math.pi / 4))]
    if shape == "triangle":
        return [rot(regular(3, r, -math.pi / 2))]
    if shape == "hexagon":
        return [rot(regular(6, r))]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + math.pi * k / 5
            pts.append((rad * math.cos(a), rad * math.sin(a)))
        return [rot(pts)]
    if shape == "cross":
        w = r * 0.35
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
        return [rot(pts)]
    if shape == "ell":
        w = r * 0.45
        pts = [(-r, -r), (-r + 2 * w, -r), (-r + 2 * w, r - 2 * w), (r, r - 2 * w), (r, r), (-r, r)]
        return [rot(pts)]
    if shape == "arrow":
        pts = [(r, 0), (0, -r), (0, -r * 0.4), (-r, -r * 0.4), (-r, r * 0.4), (0, r * 0.4), (0, r)]
        return [rot(pts)]
    if shape == "ring":
        return [rot(regular(48, r)), rot(regular(48, r * 0.55))]
    if shape == "crescent":
        inner = [(x + r * 0.45, y) for x, y in regular(48, r * 0.85)]
        return [rot(regular(48, r)), rot(inner)]
    raise ValueError(f"unknown shape {shape!r}")


def _shape_mask(shape: str, size: tuple[int, int], cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    polys = _shape_polygons(shape, cx, cy, r, angle)
    draw.polygon(polys[0], fill=255)
    if len(polys) > 1:
        draw.polygon(polys[1], fill=0)
    return np.asarray(img) > 127


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random fill: a solid colour, or stripes of two colours at a random angle and period."""
    a, b = _colour(rng), _colour(rng)
    if rng.random() < 0.4:
        return np.broadcast_to(a, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(4, 12)
    stripes = (np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period) > 0)[..., None]
    return np.where(stripes, a, b)


def _background(rng: np.random.Generator, h: int, w: int, clutter: int, saturation: float = 1.0) -> np.ndarray:
    """A cluttered canvas: a smooth colour gradient, small distractor shapes and lines, noise;
    ``saturation`` < 1 pulls every pixel toward its grey (ITU-R BT.601 luma) value."""
    c0, c1 = _colour(rng), _colour(rng)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    canvas = Image.fromarray(np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(clutter):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            draw.line([(x0, y0), (x0 + rng.uniform(-20, 20), y0 + rng.uniform(-20, 20))], fill=colour, width=int(rng.integers(1, 3)))
        else:
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            poly = _shape_polygons(shape, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, 6), rng.uniform(0, 2 * math.pi))
            draw.polygon(poly[0], fill=colour)
    arr = np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.5)), dtype=np.float32)
    if saturation < 1.0:
        grey = (arr @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        arr = grey + saturation * (arr - grey)
    return arr + rng.normal(0, 6, arr.shape).astype(np.float32)


def _paste_object(canvas: np.ndarray, rng: np.random.Generator, config: SyntheticConfig, label: int, pool: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Paste an object of class ``label`` (radius ``r``) and return its mask; ``pool`` says which
    photos a photo item may come from (scene, train or val, disjoint)."""
    if config.items == "fashion-mnist":
        return fashion_items(str(config.items_root)).paste(canvas, rng, label, pool, cx, cy, r)
    h, w = canvas.shape[:2]
    mask = _shape_mask(SHAPES[label], (w, h), cx, cy, r, rng.uniform(0, 2 * math.pi))
    tex = _texture(rng, h, w) + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    canvas[mask] = tex[mask]
    return mask


def render_scene(config: SyntheticConfig, index: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Scene ``index``: (RGB uint8 image, instance-id map uint8, class of each instance id - 1)."""
    rng = np.random.default_rng([config.seed, _KINDS["scene"], index])
    s = config.scene_size
    canvas = _background(rng, s, s, config.clutter, config.background_saturation)
    ids = np.zeros((s, s), np.uint8)
    boxes: list[tuple[float, float, float, float]] = []
    classes: list[int] = []
    n = int(rng.integers(config.objects_per_scene[0], config.objects_per_scene[1] + 1))
    for _ in range(n):
        for _attempt in range(20):
            size = rng.uniform(*config.object_size)
            r = size / 2
            cx, cy = rng.uniform(r, s - r), rng.uniform(r, s - r)
            box = (cx - r, cy - r, cx + r, cy + r)
            if all(_overlap(box, b) < 0.15 for b in boxes):
                break
        else:
            continue
        label = int(rng.integers(config.num_classes))
        mask = _paste_object(canvas, rng, config, label, "scene", cx, cy, r)
        ids[mask] = len(classes) + 1
        boxes.append(box)
        classes.append(label)
    return np.clip(canvas, 0, 255).astype(np.uint8), ids, classes


def render_object(config: SyntheticConfig, split: str, index: int) -> tuple[np.ndarray, int]:
    """Single-object image ``index`` of ``split`` (train/val): (RGB uint8 image, class)."""
    rng = np.random.default_rng([config.seed, _KINDS[split], index])
    s = config.eval_size
    label = index % config.num_classes
    canvas = _background(rng, s, s, max(1, config.clutter * s * s // config.scene_size**2), config.background_saturation)
    r = rng.uniform(0.3, 0.45) * s
    cx, cy = s / 2 + rng.uniform(-0.1, 0.1) * s, s / 2 + rng.uniform(-0.1, 0.1) * s
    _paste_object(canvas, rng, config, label, split, cx, cy, r)
    return np.clip(canvas, 0, 255).astype(np.uint8), label


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


@dataclass(frozen=True)
class SyntheticPaths:
    root: Path

    @property
    def images(self) -> Path:
        return self.root / "scenes" / "images"

    @property
    def masks(self) -> Path:
        return self.root / "scenes" / "masks"

    @property
    def classes(self) -> Path:
        """JSON: scene path -> the class index of each instance id (id k at position k - 1)."""
        return self.root / "scenes" / "classes.json"

    @property
    def eval(self) -> Path:
        return self.root / "eval"


def generate(root: str | Path, config: SyntheticConfig = SyntheticConfig()) -> SyntheticPaths:
    """Write the dataset under ``root`` (nothing is rewritten when it is already there with the
    same parameters; a partial or different one is replaced)."""
    paths = SyntheticPaths(Path(root))
    meta_file = paths.root / "synthetic.json"
    meta = {"config": asdict(config), "classes": list(config.classes)}
    if meta_file.is_file() and json.loads(meta_file.read_text()) == json.loads(json.dumps(meta)):
        if not paths.classes.is_file():  # written by a version without classes.json: add it
            paths.classes.write_text(json.dumps({f"{i:05d}.png": render_scene(config, i)[2] for i in range(config.scenes)}))
        return paths
    meta_file.unlink(missing_ok=True)
    paths.images.mkdir(parents=True, exist_ok=True)
    paths.masks.mkdir(parents=True, exist_ok=True)
    classes = {}
    for i in range(config.scenes):
        image, ids, classes[f"{i:05d}.png"] = render_scene(config, i)
        Image.fromarray(image).save(paths.images / f"{i:05d}.png")
        Image.fromarray(ids).save(paths.masks / f"{i:05d}.png")
    paths.classes.write_text(json.dumps(classes))
    for split, per_class in (("train", config.eval_train_per_class), ("val", config.eval_val_per_class)):
        for name in config.classes:
            (paths.eval / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class * config.num_classes):
            image, label = render_object(config, split, i)
            Image.fromarray(image).save(paths.eval / split / config.classes[label] / f"{i:05d}.png")
    meta_file.write_text(json.dumps(meta, indent=1))  # written last: its presence means complete
    return paths
