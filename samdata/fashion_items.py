"""Fashion-MNIST product photos as the objects of synthetic scenes (``items: fashion-mnist``).

Fashion-MNIST (Xiao et al., 2017) holds 70k real 28x28 grayscale photos of Zalando products in 10
classes. Pasted several to a cluttered canvas, they give real objects in a scene we can make
offline, the miniature of the SAMCLR paper's "pretrain on scenes, evaluate on objects".

The photos are read in torchvision's layout (``<root>/FashionMNIST/raw/*-ubyte``), which
``python -m samdata prepare fashion-mnist`` writes (from a download, or from the IDX
files of Debian's ``dataset-fashion-mnist`` package). The three uses draw from disjoint photos:
scenes from the even indices of the training split, the evaluation bank from its odd indices,
the evaluation queries from the test split.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import binary_fill_holes

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
"""Fashion-MNIST's classes in label order, spelled as folder names (its own 'T-shirt/top' has a slash)."""

POOLS = ("scene", "train", "val")
_FOREGROUND = 10
"""Grey level (of 255) above which a pixel of a photo belongs to the product; holes are filled."""


class FashionItems:
    """The photos of one Fashion-MNIST folder, grouped by class and by use (``POOLS``)."""

    def __init__(self, root: str | Path):
        import torchvision

        self.root = Path(root)
        try:
            train = torchvision.datasets.FashionMNIST(str(self.root), train=True, download=False)
            test = torchvision.datasets.FashionMNIST(str(self.root), train=False, download=False)
        except RuntimeError:
            raise FileNotFoundError(
                f"fashion-mnist items: no Fashion-MNIST under {self.root} (expected FashionMNIST/raw/*-ubyte); run "
                f"`python -m samdata prepare fashion-mnist --root {self.root}` "
                "(add --source /usr/share/datasets/fashion-mnist to use Debian's dataset-fashion-mnist)"
            ) from None
        images = {"train": train.data.numpy(), "val": test.data.numpy()}
        labels = {"train": train.targets.numpy(), "val": test.targets.numpy()}
        index = np.arange(len(labels["train"]))
        self._pools: dict[str, list[np.ndarray]] = {}
        for pool, split, keep in (("scene", "train", index % 2 == 0), ("train", "train", index % 2 == 1), ("val", "val", None)):
            y = labels[split]
            self._pools[pool] = [images[split][(y == k) & (keep if keep is not None else True)] for k in range(len(CLASSES))]
            empty = [CLASSES[k] for k, photos in enumerate(self._pools[pool]) if len(photos) == 0]
            if empty:
                raise ValueError(f"fashion-mnist items under {self.root}: no {pool} photos of {', '.join(empty)}")

    def pick(self, rng: np.random.Generator, label: int, pool: str) -> np.ndarray:
        """A random 28x28 uint8 photo of class ``label`` from ``pool``."""
        photos = self._pools[pool][label]
        return photos[int(rng.integers(len(photos)))]

    def paste(self, canvas: np.ndarray, rng: np.random.Generator, label: int, pool: str, cx: float, cy: float, r: float) -> np.ndarray:
        """Paste a photo of class ``label``, 2r pixels wide, centred at (cx, cy), tinted a random colour
        (colour is no cue to the class, as in the shape scenes); returns the product's mask."""
        h, w = canvas.shape[:2]
        side = max(4, int(round(2 * r)))
        photo = Image.fromarray(self.pick(rng, label, pool)).resize((side, side), Image.BILINEAR)
        grey = np.asarray(photo, dtype=np.float32)
        if rng.random() < 0.5:
            grey = grey[:, ::-1]
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        xs, ys = slice(max(0, x0), min(w, x0 + side)), slice(max(0, y0), min(h, y0 + side))
        grey = grey[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        inside = binary_fill_holes(grey > _FOREGROUND)
        tint = rng.uniform(90, 255, 3).astype(np.float32)
        colour = (0.2 + 0.8 * grey[..., None] / 255.0) * tint + rng.normal(0, 4, (*grey.shape, 3)).astype(np.float32)
        canvas[ys, xs][inside] = colour[inside]
        mask = np.zeros((h, w), bool)
        mask[ys, xs] = inside
        return mask


@lru_cache(maxsize=2)
def fashion_items(root: str) -> FashionItems:
    """Loaded once per process and folder."""
    return FashionItems(root)
