"""CIFAR-10: one of the SAMCLR paper's eval sets (KNN and linear probe), torchvision's layout.

Source: torchvision's download (``torchvision.datasets.CIFAR10(root, download=True)``) when no
``--source`` is given, else ``cifar-10-python.tar.gz`` (https://www.cs.toronto.edu/~kriz/cifar.html)
or its extracted ``cifar-10-batches-py`` folder.

Under ROOT: ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``, the eval set
``{kind: cifar10, root: ROOT}``. Counts are read from the pickled batches themselves. torchvision's
loader also compares every batch's MD5 with the one it records: ``check`` does too when the counts
are right, so a file torchvision would refuse is reported here.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from pathlib import Path

from samdata.download import prepare_folder_or_download
from samdata.prepared import Report, differing_md5, listed, shortfall

NAME = "cifar10"
FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

OFFICIAL: dict[str, int] = {"train": 50000, "test": 10000}
"""Images per split: 50,000 training images in five batches and 10,000 test images (Krizhevsky,
"Learning Multiple Layers of Features from Tiny Images", 2009, Ch. 3; https://www.cs.toronto.edu/~kriz/cifar.html)."""

BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
META = "batches.meta"
_MEMBER = re.compile(rf"^{FOLDER}/(data_batch_[1-5]|test_batch|batches\.meta|readme\.html)$")


def _batch_size(path: Path) -> int:
    """Images in one pickled batch (``data`` rows of 3072 bytes, one label each)."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    data, labels = batch["data"], batch["labels"]
    if data.shape != (len(labels), 3072):
        raise ValueError(f"data is {data.shape} for {len(labels)} labels")
    return len(labels)


def check(root: str | Path, expected: dict[str, int] = OFFICIAL, md5: bool | None = None) -> Report:
    """Images per split, read from the batches, against ``expected``; when they match and ``md5``
    (default: when ``expected`` are the official counts; a miniature cannot match), torchvision's checksums."""
    root = Path(root)
    folder = root / FOLDER
    report = Report(NAME, root)
    for split, want in expected.items():
        have, absent, broken = 0, [], []
        for name in BATCHES[split]:
            try:
                have += _batch_size(folder / name)
            except FileNotFoundError:
                absent.append(name)
            except Exception as err:  # noqa: BLE001 - a truncated or foreign pickle fails in many ways
                broken.append(f"{name} ({type(err).__name__}: {err})")
        if have == want and not absent and not broken:
            report.found(f"{FOLDER}: {split} {want} images")
            continue
        text = shortfall(f"{FOLDER}: {split}", have, want)
        if absent:
            text += f"; missing files: {listed(absent)}"
        if broken:
            text += f"; unreadable: {listed(broken)}"
        report.short(text)
    if not (folder / META).is_file():
        report.short(f"{FOLDER}: no {META} (torchvision reads the class names from it)")
    if (expected is OFFICIAL if md5 is None else md5) and report.complete:
        from torchvision.datasets import CIFAR10

        recorded = [*CIFAR10.train_list, *CIFAR10.test_list, [META, CIFAR10.meta["md5"]]]
        differ = differing_md5(folder, recorded)
        if differ:
            report.short(f"{FOLDER}: {listed(differ)} differ from the official files (MD5): torchvision.datasets.CIFAR10 will refuse them")
        else:
            report.found(f"{FOLDER}: MD5s match torchvision's")
    return report


def prepare(root: str | Path, sources: Sequence[str | Path] = (), expected: dict[str, int] = OFFICIAL) -> Report:
    root = Path(root)

    def fetch():
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=True, download=True)

    return prepare_folder_or_download(
        NAME, root, sources, folder=FOLDER, part="batches", role="cifar-10-python.tar.gz or its cifar-10-batches-py folder",
        member=_MEMBER, url=URL, fetch=fetch, instead="download it elsewhere and pass --source cifar-10-python.tar.gz",
        check=lambda md5: check(root, expected, md5=md5),
    )
