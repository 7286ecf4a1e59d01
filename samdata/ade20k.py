"""ADE20K (SceneParsing, ADEChallengeData2016): the pretraining images of the SAMCLR paper's Table 2.

Sources: ``ADEChallengeData2016.zip`` (http://sceneparsing.csail.mit.edu/:
``ADEChallengeData2016/images/{training,validation}/*.jpg`` and ``annotations/...`` semantic class
maps) and, for the ``ground_truth`` masker, the SceneParsing instance annotations
``annotations_instance.tar`` (``annotations_instance/{training,validation}/*.png``: R = class,
G = instance id, 0 = none; https://github.com/CSAILVision/placeschallenge).

Under ROOT: ``ADEChallengeData2016/images/...`` as in the archive and
``ADEChallengeData2016/instance_masks/{training,validation}/<stem>.png`` (instances 1..n, 0 elsewhere).
Without the instance archive there are no instance masks and the ``ground_truth`` masker is not
available; ``semantic_as_instances`` (``--semantic-as-instances``) instead writes
``ADEChallengeData2016/semantic_components/...``: the connected components of each semantic class,
which are not instances (two touching chairs are one component, a wall split by a door is two).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from samdata import DataError, instance_masks
from samdata.image_files import list_images
from samdata.prepared import Report, listed, shortfall, without_mask
from samdata.sources import Source, extract, prepare_part, sort_sources

NAME = "ade20k"
TOP = "ADEChallengeData2016"

OFFICIAL: dict[str, int] = {"training": 20210, "validation": 2000}
"""Images per split of ``ADEChallengeData2016.zip``: 20,210 training and 2,000 validation images
(Zhou et al., "Scene Parsing through ADE20K Dataset", CVPR 2017, Sec. 3; the SceneParsing benchmark
page http://sceneparsing.csail.mit.edu/)."""

ROLES = {
    "images": (rf"^{TOP}/images/", f"{TOP}.zip"),
    "instance_masks": (r"(^|/)annotations_instance/", "annotations_instance.tar"),
}
MASK_FOLDERS = {
    "instance_masks": "instances from annotations_instance.tar",
    "semantic_components": "connected components of semantic classes (--semantic-as-instances), not instances",
}
_IMAGE = re.compile(rf"^{TOP}/images/(training|validation)/[^/]+\.jpg$")
_INSTANCES = re.compile(r"^(?:.*/)?annotations_instance/(training|validation)/([^/]+)\.png$")
_SEMANTIC = re.compile(rf"^{TOP}/annotations/(training|validation)/([^/]+)\.png$")


def _image_path(name: str) -> str | None:
    return name if _IMAGE.match(name) else None


def _instance_path(name: str) -> str | None:
    m = _INSTANCES.match(name)
    return f"{TOP}/instance_masks/{m[1]}/{m[2]}.png" if m else None


def _semantic_path(name: str) -> str | None:
    m = _SEMANTIC.match(name)
    return f"{TOP}/semantic_components/{m[1]}/{m[2]}.png" if m else None


def instance_ids(annotation: Image.Image) -> np.ndarray:
    """Instances of an ``annotations_instance`` PNG (distinct (class R, instance G) with both > 0) numbered 1..n."""
    rgb = np.asarray(annotation.convert("RGB")).astype(np.int64)
    cls, inst = rgb[..., 0], rgb[..., 1]
    return instance_masks.number_instances(cls * 256 + inst, (cls > 0) & (inst > 0))


def semantic_components(annotation: Image.Image) -> np.ndarray:
    """Connected components (4-connected) of each semantic class > 0 of a class map, numbered 1..n."""
    from scipy import ndimage

    classes = np.asarray(annotation)
    ids = np.zeros(classes.shape, np.int64)
    n = 0
    for c in np.unique(classes):
        if c == 0:
            continue
        labels, k = ndimage.label(classes == c)
        ids[labels > 0] = labels[labels > 0] + n
        n += k
    return ids


def _check_images(root: Path, expected: dict[str, int], report: Report) -> dict[str, list[str]]:
    images = {}
    for split, want in expected.items():
        folder = root / TOP / "images" / split
        files = images[split] = list_images(folder, (".jpg",)) if folder.is_dir() else []
        if len(files) == want:
            report.found(f"{TOP}/images/{split}: {want} images")
        else:
            report.short(shortfall(f"{TOP}/images/{split}", len(files), want))
    return images


def _check_masks(root: Path, images: dict[str, list[str]], folder: str, report: Report) -> None:
    for split, files in images.items():
        lacking = without_mask(files, root / TOP / folder / split)
        if lacking:
            report.short(f"{TOP}/{folder}/{split} has masks for {len(files) - len(lacking)} of {len(files)} images; none for {listed(lacking, 3)}")
        else:
            report.found(f"{TOP}/{folder}/{split}: one mask per image ({MASK_FOLDERS[folder]})")


def check(root: str | Path, expected: dict[str, int] = OFFICIAL) -> Report:
    """Images per split against ``expected``; every mask folder there holds a mask for every image."""
    root = Path(root)
    report = Report(NAME, root)
    images = _check_images(root, expected, report)
    for folder in MASK_FOLDERS:
        if (root / TOP / folder).is_dir():
            _check_masks(root, images, folder, report)
    if not (root / TOP / "instance_masks").is_dir():
        report.note(
            f"no instance masks: the ground_truth masker is not available for {NAME} "
            f"(pass --source {ROLES['instance_masks'][1]}, the SceneParsing instance annotations)"
        )
    return report


def prepare(
    root: str | Path, sources: Sequence[str | Path] = (), expected: dict[str, int] = OFFICIAL, semantic_as_instances: bool = False
) -> Report:
    root = Path(root)
    found = sort_sources(NAME, sources, ROLES, tops=(TOP, "annotations_instance"))
    images_report = Report(NAME, root)
    _check_images(root, expected, images_report)
    prepare_part(
        NAME, root, "images", found.get("images"), images_report.complete,
        lambda source, redo: str(extract(source, _image_path, root)),
        absent=f"{root / TOP / 'images'} is incomplete and no --source holds it: download {ROLES['images'][1]} "
        "from http://sceneparsing.csail.mit.edu/ and pass --source PATH",
    )
    parts = {"instance_masks": (found.get("instance_masks"), _instance_path, instance_ids)}
    if semantic_as_instances:
        if "images" not in found:
            raise DataError(f"{NAME}: --semantic-as-instances reads {TOP}/annotations/ from {ROLES['images'][1]}: pass it as --source")
        parts["semantic_components"] = (found["images"], _semantic_path, semantic_components)
    for folder, (source, select, to_ids) in parts.items():
        if source is None:
            continue
        report = Report(NAME, root)
        _check_masks(root, _check_images(root, expected, Report(NAME, root)), folder, report)
        prepare_part(
            NAME, root, folder, source, report.complete,
            lambda source, redo, select=select, to_ids=to_ids: _convert(source, select, to_ids, root, redo), absent=None,
        )
    return check(root, expected)


def _convert(
    source: Source, select: Callable[[str], str | None], to_ids: Callable[[Image.Image], np.ndarray], root: Path, redo: bool
) -> str:
    written, kept = instance_masks.convert(source, select, to_ids, root, redo)
    return f"{written} masks written, {kept} already there"
