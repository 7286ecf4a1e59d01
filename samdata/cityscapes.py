"""Cityscapes: the pretraining images of the SAMCLR paper's Table 1, with optional instance masks.

Sources (https://www.cityscapes-dataset.com/downloads/, free account, no direct download):
``leftImg8bit_trainvaltest.zip`` (``leftImg8bit/{train,val,test}/<city>/<stem>_leftImg8bit.png``)
and, for the ``ground_truth`` masker, ``gtFine_trainvaltest.zip``
(``gtFine/{train,val}/<city>/<stem>_gtFine_instanceIds.png``: 16-bit, a value >= 1000 is an
instance ``classid * 1000 + k``, a smaller one a stuff or class id without instances).

Under ROOT: ``leftImg8bit/{train,val,test}/...`` as in the archive, and
``instance_masks/{train,val}/<city>/<stem>_leftImg8bit.png`` (instances 1..n, 0 elsewhere). A sweep
then reads ``datasets: cityscapes: {root: ROOT/leftImg8bit/train, masks: ROOT/instance_masks/train}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from samdata import instance_masks
from samdata.image_files import list_images
from samdata.prepared import Report, listed, per_folder, shortfall, without_mask
from samdata.sources import Source, extract, prepare_part, sort_sources

NAME = "cityscapes"
DOWNLOADS = "https://www.cityscapes-dataset.com/downloads/"

OFFICIAL: dict[str, dict[str, int]] = {
    "train": {
        "aachen": 174, "bochum": 96, "bremen": 316, "cologne": 154, "darmstadt": 85, "dusseldorf": 221,
        "erfurt": 109, "hamburg": 248, "hanover": 196, "jena": 119, "krefeld": 99, "monchengladbach": 94,
        "strasbourg": 365, "stuttgart": 196, "tubingen": 144, "ulm": 95, "weimar": 142, "zurich": 122,
    },
    "val": {"frankfurt": 267, "lindau": 59, "munster": 174},
    "test": {"berlin": 544, "bielefeld": 181, "bonn": 46, "leverkusen": 58, "mainz": 298, "munich": 398},
}  # fmt: skip
"""Images per split and city of ``leftImg8bit_trainvaltest.zip``.

Split totals 2975 train, 500 val, 1525 test: Cordts et al., "The Cityscapes Dataset for Semantic
Urban Scene Understanding", CVPR 2016 (Sec. 2), and the dataset's download page. The cities of each
split are the official split (cityscapesScripts). Per-city figures are file counts of the archive as
published in dataset tools; the check decides on the split totals and on every city being there,
and uses the per-city figures only to say where a shortfall is.
"""

MASK_SPLITS = ("train", "val")
"""Splits with real instance annotations (gtFine's test split holds dummy ones)."""

ROLES = {
    "images": (r"^leftImg8bit/", "leftImg8bit_trainvaltest.zip"),
    "instance_masks": (r"^gtFine/", "gtFine_trainvaltest.zip"),
}
_IMAGE = re.compile(r"^leftImg8bit/(train|val|test)/[^/]+/[^/]+_leftImg8bit\.png$")
_INSTANCE_IDS = re.compile(r"^gtFine/(train|val)/([^/]+)/([^/]+)_gtFine_instanceIds\.png$")


def _image_path(name: str) -> str | None:
    return name if _IMAGE.match(name) else None


def _mask_path(name: str) -> str | None:
    m = _INSTANCE_IDS.match(name)
    return f"instance_masks/{m[1]}/{m[2]}/{m[3]}_leftImg8bit.png" if m else None


def instance_ids(annotation: Image.Image) -> np.ndarray:
    """Instances of a ``*_gtFine_instanceIds.png`` (values >= 1000) numbered 1..n, 0 elsewhere."""
    values = np.asarray(annotation).astype(np.int64)
    return instance_masks.number_instances(values, values >= 1000)


def _check_images(root: Path, expected: dict[str, dict[str, int]], report: Report) -> dict[str, list[str]]:
    images = {}
    for split, cities in expected.items():
        folder = root / "leftImg8bit" / split
        files = images[split] = list_images(folder, ("_leftimg8bit.png",)) if folder.is_dir() else []
        have, want = per_folder(files), sum(cities.values())
        missing = [c for c in cities if not have[c]]
        if len(files) == want and not missing:
            report.found(f"leftImg8bit/{split}: {want} images, {len(cities)} cities")
            continue
        text = shortfall(f"leftImg8bit/{split}", len(files), want)
        if missing and files:
            text += f"; missing cities: {listed(missing, 20)}"
        short = [f"{c} {have[c]} of {n}" for c, n in cities.items() if 0 < have[c] < n]
        if short:
            text += f"; short: {listed(short)}"
        report.short(text)
    return images


def _check_masks(root: Path, images: dict[str, list[str]], report: Report, required: bool = False) -> None:
    if not (root / "instance_masks").is_dir():
        (report.short if required else report.note)(f"no instance masks: pass --source {ROLES['instance_masks'][1]} for the ground_truth masker")
        return
    for split in MASK_SPLITS:
        if split not in images:
            continue
        lacking = without_mask(images[split], root / "instance_masks" / split)
        n = len(images[split])
        if lacking:
            report.short(f"instance_masks/{split} has masks for {n - len(lacking)} of {n} images; none for {listed(lacking, 3)}")
        else:
            report.found(f"instance_masks/{split}: one mask per image")


def check(root: str | Path, expected: dict[str, dict[str, int]] = OFFICIAL) -> Report:
    """Images per split and city against ``expected``; masks, where there are any, for every train/val image."""
    root = Path(root)
    report = Report(NAME, root)
    _check_masks(root, _check_images(root, expected, report), report)
    return report


def prepare(root: str | Path, sources: Sequence[str | Path] = (), expected: dict[str, dict[str, int]] = OFFICIAL) -> Report:
    root = Path(root)
    found = sort_sources(NAME, sources, ROLES)
    images_report = Report(NAME, root)
    images = _check_images(root, expected, images_report)
    prepare_part(
        NAME, root, "images", found.get("images"), images_report.complete,
        lambda source, redo: str(extract(source, _image_path, root)),
        absent=f"{root / 'leftImg8bit'} is incomplete and no --source holds it: download "
        f"{ROLES['images'][1]} from {DOWNLOADS} and pass --source PATH",
    )
    if "instance_masks" in found:
        images = _check_images(root, expected, Report(NAME, root))
        masks_report = Report(NAME, root)
        _check_masks(root, images, masks_report, required=True)
        prepare_part(
            NAME, root, "instance_masks", found["instance_masks"], masks_report.complete,
            lambda source, redo: _convert(source, root, redo), absent=None,
        )
    return check(root, expected)


def _convert(source: Source, root: Path, redo: bool) -> str:
    written, kept = instance_masks.convert(source, _mask_path, instance_ids, root, redo)
    return f"{written} instance masks written, {kept} already there"
