"""The datasets ``python -m samdata`` knows: name -> module with ``prepare`` and ``check``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from samdata import DataError, ade20k, cifar10, cityscapes, fashion_mnist, imagenette, stl10
from samdata.prepared import Report


@dataclass(frozen=True)
class DatasetEntry:
    module: ModuleType
    """Has ``prepare(root, sources, **options) -> Report`` and ``check(root, **options) -> Report``."""
    summary: str


DATASETS: dict[str, DatasetEntry] = {
    "cityscapes": DatasetEntry(
        cityscapes, "Table 1 pretraining: leftImg8bit_trainvaltest.zip [+ gtFine_trainvaltest.zip for instance masks]"
    ),
    "ade20k": DatasetEntry(ade20k, "Table 2 pretraining: ADEChallengeData2016.zip [+ annotations_instance.tar for instance masks]"),
    "imagenette": DatasetEntry(imagenette, "Table 3 pretraining and eval set: imagenette2[-320|-160].tgz"),
    "cifar10": DatasetEntry(cifar10, "eval set: torchvision download, or cifar-10-python.tar.gz"),
    "stl10": DatasetEntry(stl10, "eval set: torchvision download, or stl10_binary.tar.gz"),
    "fashion-mnist": DatasetEntry(fashion_mnist, "eval set: torchvision download, or a folder of the four IDX files"),
}


def lookup(name: str) -> tuple[str, DatasetEntry]:
    """The entry for ``name`` (``fashion_mnist`` and ``fashion-mnist`` are the same), or a DataError listing the known ones."""
    key = name.lower().replace("_", "-")
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return key, DATASETS[key]


def prepare(
    name: str, root: str | Path, sources: Sequence[str | Path] = (), semantic_as_instances: bool = False, **counts: Any
) -> Report:
    """Prepare dataset ``name`` under ``root`` from ``sources``; ``counts`` (for tests) replace the
    official counts (``expected=``, imagenette's ``classes=``)."""
    key, entry = lookup(name)
    if semantic_as_instances:
        if key != "ade20k":
            raise DataError(f"--semantic-as-instances applies to ade20k only, not {key}")
        counts["semantic_as_instances"] = True
    return entry.module.prepare(Path(root), list(sources), **counts)


def check(name: str, root: str | Path, **counts: Any) -> Report:
    """Check dataset ``name`` under ``root`` against its official counts (or ``counts``, for tests)."""
    _, entry = lookup(name)
    return entry.module.check(Path(root), **counts)
