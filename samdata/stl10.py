"""STL-10: one of the SAMCLR paper's eval sets (KNN and linear probe), torchvision's layout.

Source: torchvision's download (``torchvision.datasets.STL10(root, download=True)``) when no
``--source`` is given, else ``stl10_binary.tar.gz`` (https://cs.stanford.edu/~acoates/stl10/) or its
extracted ``stl10_binary`` folder.

Under ROOT: ``stl10_binary/{train,test}_{X,y}.bin``, ``unlabeled_X.bin``, ``class_names.txt``,
``fold_indices.txt``: the eval set ``{kind: stl10, root: ROOT}``. Counts come from the file sizes
(96x96x3 bytes per image, one byte per label). torchvision's loader also compares each file's MD5
with the one it records: ``check`` does too when the counts are right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from samdata.download import prepare_folder_or_download
from samdata.prepared import Report, differing_md5, shortfall

NAME = "stl10"
FOLDER = "stl10_binary"
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
IMAGE_BYTES = 3 * 96 * 96

OFFICIAL: dict[str, int] = {"train": 5000, "test": 8000, "unlabeled": 100000}
"""Images per split: 500 training and 800 test images for each of 10 classes, and 100,000 unlabeled
images (Coates, Lee and Ng, "An Analysis of Single-Layer Networks in Unsupervised Feature Learning",
AISTATS 2011; https://cs.stanford.edu/~acoates/stl10/)."""

FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin"), "unlabeled": ("unlabeled_X.bin", None)}
TEXT_FILES = ("class_names.txt", "fold_indices.txt")
_MEMBER = re.compile(rf"^{FOLDER}/([a-z]+_[Xy]\.bin|class_names\.txt|fold_indices\.txt)$")


def _count(folder: Path, split: str) -> tuple[int, str | None]:
    """Images of a split and what is wrong with its files (None: nothing)."""
    images, labels = FILES[split]
    x = folder / images
    if not x.is_file():
        return 0, f"no {images}"
    n, rest = divmod(x.stat().st_size, IMAGE_BYTES)
    if rest:
        return n, f"{images} is truncated ({rest} bytes past the last whole image)"
    if labels is not None:
        y = folder / labels
        if not y.is_file():
            return n, f"no {labels}"
        if y.stat().st_size != n:
            return n, f"{labels} holds {y.stat().st_size} labels for {n} images"
    return n, None


def check(root: str | Path, expected: dict[str, int] = OFFICIAL, md5: bool | None = None) -> Report:
    """Images per split (from file sizes) against ``expected``; when they match and ``md5`` (default:
    when ``expected`` are the official counts; a miniature cannot match), torchvision's checksums."""
    root = Path(root)
    folder = root / FOLDER
    report = Report(NAME, root)
    for split, want in expected.items():
        have, problem = _count(folder, split)
        if have == want and problem is None:
            report.found(f"{FOLDER}: {split} {want} images")
        else:
            report.short(shortfall(f"{FOLDER}: {split}", have, want) + (f"; {problem}" if problem else ""))
    absent = [name for name in TEXT_FILES if not (folder / name).is_file()]
    if absent:
        report.short(f"{FOLDER}: no {' or '.join(absent)} (torchvision reads them)")
    if (expected is OFFICIAL if md5 is None else md5) and report.complete:
        from torchvision.datasets import STL10

        differ = differing_md5(folder, [*STL10.train_list, *STL10.test_list])
        if differ:
            report.short(f"{FOLDER}: {', '.join(differ)} differ from the official files (MD5): torchvision.datasets.STL10 will refuse them")
        else:
            report.found(f"{FOLDER}: MD5s match torchvision's")
    return report


def prepare(root: str | Path, sources: Sequence[str | Path] = (), expected: dict[str, int] = OFFICIAL) -> Report:
    root = Path(root)

    def fetch():
        from torchvision.datasets import STL10

        STL10(str(root), split="test", download=True)

    return prepare_folder_or_download(
        NAME, root, sources, folder=FOLDER, part="binaries", role="stl10_binary.tar.gz or its stl10_binary folder",
        member=_MEMBER, url=URL, fetch=fetch, instead="download it elsewhere (2.6 GB) and pass --source stl10_binary.tar.gz",
        check=lambda md5: check(root, expected, md5=md5),
    )
