"""Labelled evaluation sets: KNN and linear probes read features of their train and val splits.

The SAMCLR paper evaluates on CIFAR-10, STL10 and ImageNette (Sec. 4.1). Four kinds of set:

- ``folder``: ``<root>/{train,val}/<class>/*`` (ImageNette's layout; also the synthetic eval set),
- ``cifar10`` and ``stl10``: torchvision's loaders, downloading when ``download`` is true,
- ``fashion_mnist``: torchvision's loader, grey images turned RGB (not in the paper: a small real
  set that works offline, e.g. from Debian's ``dataset-fashion-mnist``).

``python -m samdata prepare {imagenette,cifar10,stl10,fashion-mnist} --root ROOT`` puts each
in the layout read here.

Images are resized to the evaluation size (the paper evaluates at the 128 px training size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

from selfsup.augment import IMAGENET_MEAN, IMAGENET_STD
from samdata.image_files import load_rgb

Transform = Callable
SPLITS = ("train", "val")


@dataclass(frozen=True)
class EvalSet:
    """A labelled set; ``make(split, transform)`` builds the split's dataset of (image, label)."""

    name: str
    num_classes: int
    make: Callable[[str, Transform], torch.utils.data.Dataset]


INTERPOLATIONS = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}


@dataclass(frozen=True)
class Preprocessing:
    """How images reach a backbone for evaluation: resize the short side to ``resize`` (default
    ``size``), centre-crop ``size``, normalise with ``mean``/``std``. Defaults: the trained trials'
    (ImageNet statistics, bilinear, no margin); a frozen encoder brings its own
    (``selfsup.encoders``)."""

    size: int
    resize: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    def eval(self) -> T.Compose:
        """Features for KNN and the linear probe."""
        mode = INTERPOLATIONS[self.interpolation]
        return T.Compose([T.Resize(self.resize or self.size, interpolation=mode), T.CenterCrop(self.size), T.ToTensor(), T.Normalize(self.mean, self.std)])

    def probe_train(self) -> T.Compose:
        """The reference code's linear-probe training augmentation: random-resized crop and flip."""
        mode = INTERPOLATIONS[self.interpolation]
        return T.Compose([T.RandomResizedCrop(self.size, interpolation=mode), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(self.mean, self.std)])


def eval_transform(size: int) -> T.Compose:
    """Resize the short side, centre-crop, normalise: features for KNN and the linear probe."""
    return Preprocessing(size).eval()


def probe_train_transform(size: int) -> T.Compose:
    """The reference code's linear-probe training augmentation: random-resized crop and flip."""
    return Preprocessing(size).probe_train()


def folder_eval_set(root: str | Path, name: str | None = None, download: bool = False) -> EvalSet:
    root = Path(root)
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise FileNotFoundError(f"eval set {root}: missing {' and '.join(f'{s}/' for s in missing)} (expected <root>/train/<class>/*, <root>/val/<class>/*)")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())

    def make(split: str, transform: Transform) -> torch.utils.data.Dataset:
        ds = torchvision.datasets.ImageFolder(root / split, transform=transform, loader=load_rgb)
        if ds.classes != classes:
            raise ValueError(f"eval set {root}: classes of {split}/ differ from train/")
        return ds

    return EvalSet(name or root.name, len(classes), make)


def _require(root: str | Path, folder: str, kind: str, download: bool, dataset: str | None = None) -> None:
    """Files of eval set ``kind`` there, or a FileNotFoundError naming the command that prepares ``dataset``."""
    if not download and not (Path(root) / folder).is_dir():
        raise FileNotFoundError(
            f"eval set {kind}: {Path(root) / folder} not found; set download: true or run "
            f"`python -m samdata prepare {dataset or kind} --root {root}`"
        )


def cifar10(root: str | Path, name: str | None = None, download: bool = False) -> EvalSet:
    def make(split: str, transform: Transform) -> torch.utils.data.Dataset:
        _require(root, "cifar-10-batches-py", "cifar10", download)
        return torchvision.datasets.CIFAR10(str(root), train=split == "train", transform=transform, download=download)

    return EvalSet(name or "cifar10", 10, make)


def stl10(root: str | Path, name: str | None = None, download: bool = False) -> EvalSet:
    def make(split: str, transform: Transform) -> torch.utils.data.Dataset:
        _require(root, "stl10_binary", "stl10", download)
        return torchvision.datasets.STL10(str(root), split="train" if split == "train" else "test", transform=transform, download=download)

    return EvalSet(name or "stl10", 10, make)


def _to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def fashion_mnist(root: str | Path, name: str | None = None, download: bool = False) -> EvalSet:
    def make(split: str, transform: Transform) -> torch.utils.data.Dataset:
        _require(root, "FashionMNIST/raw", "fashion_mnist", download, dataset="fashion-mnist")
        rgb = _to_rgb if transform is None else T.Compose([_to_rgb, transform])
        return torchvision.datasets.FashionMNIST(str(root), train=split == "train", transform=rgb, download=download)

    return EvalSet(name or "fashion_mnist", 10, make)


EVAL_SETS: dict[str, Callable[..., EvalSet]] = {
    "folder": folder_eval_set,
    "cifar10": cifar10,
    "stl10": stl10,
    "fashion_mnist": fashion_mnist,
}
"""Eval-set kind -> builder(root, name=None, download=False)."""


def build_eval_set(kind: str, root: str | Path, name: str | None = None, download: bool = False) -> EvalSet:
    if kind not in EVAL_SETS:
        raise ValueError(f"unknown eval set kind {kind!r}; known: {', '.join(EVAL_SETS)}")
    return EVAL_SETS[kind](root, name=name, download=download)
