"""ImageNette (fast.ai): the pretraining set of the SAMCLR paper's Table 3 and one of its eval sets.

Source: ``imagenette2.tgz`` (full size), ``imagenette2-320.tgz`` or ``imagenette2-160.tgz`` from
https://github.com/fastai/imagenette (``imagenette2[-320|-160]/{train,val}/<wnid>/*.JPEG``), or
the extracted folder.

Under ROOT: ``imagenette2/{train,val}/<wnid>/*.JPEG`` whichever variant it came from (the marker
records which). ``ROOT/imagenette2`` is a ``folder`` eval set, ``ROOT/imagenette2/train`` the
pretraining root.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from samdata.image_files import list_images
from samdata.prepared import Report, listed, per_folder, shortfall
from samdata.sources import extract, prepare_part, sort_sources

NAME = "imagenette"
TOP = "imagenette2"

OFFICIAL: dict[str, int] = {"train": 9469, "val": 3925}
"""Images per split of imagenette2 (all three sizes): 9,469 train and 3,925 val, as listed in
https://github.com/fastai/imagenette (README, "Imagenette" section)."""

CLASSES: tuple[str, ...] = (
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888605",
)  # fmt: skip
"""The 10 ImageNet classes (tench, English springer, cassette player, chain saw, church, French horn,
garbage truck, gas pump, golf ball, parachute), same README."""

VARIANTS = ("imagenette2", "imagenette2-320", "imagenette2-160")
ROLES = {"images": (r"^imagenette2(-320|-160)?/", "imagenette2.tgz, imagenette2-320.tgz or imagenette2-160.tgz")}
_IMAGE = re.compile(r"^imagenette2(?:-320|-160)?/((?:train|val)/n\d{8}/[^/]+\.jpe?g)$", re.IGNORECASE)


def _image_path(name: str) -> str | None:
    m = _IMAGE.match(name)
    return f"{TOP}/{m[1]}" if m else None


def _check(root: Path, expected: dict[str, int], classes: Sequence[str], report: Report) -> None:
    for split, want in expected.items():
        folder = root / TOP / split
        files = list_images(folder, (".jpeg", ".jpg")) if folder.is_dir() else []
        have = per_folder(files)
        missing = [c for c in classes if not have[c]]
        if len(files) == want and not missing:
            report.found(f"{TOP}/{split}: {want} images, {len(classes)} classes")
            continue
        text = shortfall(f"{TOP}/{split}", len(files), want)
        if missing and files:
            text += f"; missing classes: {listed(missing, len(classes))}"
        report.short(text)


def check(root: str | Path, expected: dict[str, int] = OFFICIAL, classes: Sequence[str] = CLASSES) -> Report:
    """Images per split against ``expected``, every class of ``classes`` present in each split."""
    report = Report(NAME, Path(root))
    _check(Path(root), expected, classes, report)
    return report


def prepare(
    root: str | Path, sources: Sequence[str | Path] = (), expected: dict[str, int] = OFFICIAL, classes: Sequence[str] = CLASSES
) -> Report:
    root = Path(root)
    found = sort_sources(NAME, sources, ROLES, tops=VARIANTS)
    prepare_part(
        NAME, root, "images", found.get("images"), check(root, expected, classes).complete,
        lambda source, redo: str(extract(source, _image_path, root)),
        absent=f"{root / TOP} is incomplete and no --source holds it: download "
        "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz (or -320/-160) and pass --source PATH",
    )
    return check(root, expected, classes)
