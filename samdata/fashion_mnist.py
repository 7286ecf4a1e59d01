"""Fashion-MNIST: a small real eval set that works offline (the ``fashion_mnist`` eval-set kind).

Source: torchvision's download when no ``--source`` is given, else folders (or the files themselves)
holding the four IDX files, gzipped or not: ``train-images-idx3-ubyte[.gz]``,
``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``,
e.g. Debian/Ubuntu's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).

Under ROOT: torchvision's layout ``FashionMNIST/raw/*-ubyte`` (uncompressed), so that
``torchvision.datasets.FashionMNIST(ROOT)`` and the eval set ``{kind: fashion_mnist, root: ROOT}``
load it. Counts are read from the IDX headers, whose sizes are checked against the file lengths.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

from samdata import DataError
from samdata.download import torchvision_download
from samdata.prepared import Report, is_done, mark_done, shortfall
from samdata.storage import location

NAME = "fashion-mnist"
RAW = Path("FashionMNIST") / "raw"
DEBIAN = "on Debian/Ubuntu: apt install dataset-fashion-mnist, then --source /usr/share/datasets/fashion-mnist"

OFFICIAL: dict[str, int] = {"train": 60000, "test": 10000}
"""Images per split: 60,000 training and 10,000 test examples of 28x28 grey images in 10 classes
(Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
Algorithms", arXiv:1708.07747, 2017; https://github.com/zalandoresearch/fashion-mnist)."""

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC, SIDE = 2051, 2049, 28


def idx_count(path: Path, images: bool) -> int:
    """Items in an IDX file (a ValueError when its header or length is not Fashion-MNIST's)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16 if images else 8)
    if len(head) < (16 if images else 8):
        raise ValueError("shorter than an IDX header")
    magic, n = struct.unpack(">II", head[:8])
    if magic != (IMAGES_MAGIC if images else LABELS_MAGIC):
        raise ValueError(f"not an IDX {'image' if images else 'label'} file (magic {magic})")
    if images:
        rows, cols = struct.unpack(">II", head[8:16])
        if (rows, cols) != (SIDE, SIDE):
            raise ValueError(f"images are {rows}x{cols}, not {SIDE}x{SIDE}")
    want = 16 + n * SIDE * SIDE if images else 8 + n
    if size != want:
        raise ValueError(f"{size} bytes where its header announces {want}")
    return n


def check(root: str | Path, expected: dict[str, int] = OFFICIAL) -> Report:
    """Images and labels per split, from the IDX headers, against ``expected``."""
    root = Path(root)
    report = Report(NAME, root)
    for split, want in expected.items():
        counts: list[int | None] = []
        problems = []
        for name, images in zip(FILES[split], (True, False)):
            try:
                counts.append(idx_count(root / RAW / name, images))
            except FileNotFoundError:
                counts.append(None)
                problems.append(f"no {name}")
            except ValueError as err:
                counts.append(None)
                problems.append(f"{name}: {err}")
        n_images, n_labels = counts
        if not problems and n_images == n_labels == want:
            report.found(f"{RAW.as_posix()}: {split} {want} images and labels")
            continue
        text = shortfall(f"{RAW.as_posix()}: {split}", n_images or 0, want)
        if None not in counts and n_images != n_labels:
            text += f"; {n_labels} labels for {n_images} images"
        report.short(text + "".join(f"; {p}" for p in problems))
    return report


def _idx_files(dataset: str, sources: Sequence[str | Path]) -> dict[str, Path]:
    """Each of the four IDX files (name -> path, possibly ``.gz``) among the given folders and files."""
    candidates: dict[str, Path] = {}
    for source in map(Path, sources):
        if source.is_dir():
            candidates |= {p.name: p for p in sorted(source.iterdir()) if p.is_file()}
        elif source.is_file():
            candidates[source.name] = source
        else:
            raise DataError(f"{dataset}: --source {source}: no such file or folder")
    found, absent = {}, []
    for name in (n for pair in FILES.values() for n in pair):
        path = candidates.get(name) or candidates.get(f"{name}.gz")
        if path is None:
            absent.append(f"{name}[.gz]")
        else:
            found[name] = path
    if absent:
        where = ", ".join(str(s) for s in sources)
        raise DataError(f"{dataset}: no {', '.join(absent)} in --source {where}")
    return found


def _copy(source: Path, target: Path) -> None:
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        with opener(source, "rb") as f:
            location(target).write(lambda out: shutil.copyfileobj(f, out, 1 << 20))
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{NAME}: cannot read {source}: {err}") from None


def prepare(root: str | Path, sources: Sequence[str | Path] = (), expected: dict[str, int] = OFFICIAL) -> Report:
    root = Path(root)
    files = _idx_files(NAME, sources) if sources else {}
    sid = ",".join(str(p.resolve()) for p in files.values()) or None
    if is_done(root, NAME, "raw", sid, check(root, expected).complete):
        print(f"{NAME}: raw: complete, nothing to do")
    elif files:
        for name, path in files.items():
            _copy(path, root / RAW / name)
        mark_done(root, NAME, "raw", sid)
        print(f"{NAME}: raw: 4 IDX files written to {root / RAW}")
    else:
        from torchvision.datasets import FashionMNIST

        root.mkdir(parents=True, exist_ok=True)
        torchvision_download(
            NAME, f"{FashionMNIST.mirrors[0]}{FashionMNIST.resources[0][0]}",
            lambda: FashionMNIST(str(root), train=True, download=True),
            instead=f"pass --source DIR holding the four IDX files ({DEBIAN})",
        )
        mark_done(root, NAME, "raw", None)
    return check(root, expected)
