"""Which pretraining images can be read, found once per dataset file list.

Every image must be decoded in full to know (a truncated JPEG opens fine and fails only when its
pixels are read). The region stage has just decoded every image a masker runs on, and its store
keeps each image's decode error: for those datasets the answer is read from the store, nothing is
decoded twice. A dataset that only whole-image methods use is decoded here by Ray tasks. The
unreadable ones (empty files, truncated files, text with an image's name...) are recorded in a
small JSON file beside the region stores, named by a fingerprint of the dataset's file list, so a
rerun reads the file instead. Trials leave those images out; the sweep's summary and its MLflow
parent run count and name them. Readable images in any mode (grayscale, palette, RGBA, 16-bit,
CMYK, EXIF-rotated, smaller than a crop) are used as RGB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from samdata.storage import Location, location
from masking.store import RegionStore, dataset_files, fingerprint
from samdata.image_files import load_rgb

if TYPE_CHECKING:  # not at run time: Ray's workers import this module (the decode tasks), and
    # orchestrator.plan loads selfsup and torch, seconds per worker process (tests/test_layering.py)
    from orchestrator.plan import Dataset

CHUNK = 64
"""Images per Ray task."""


def error_line(err: BaseException) -> str:
    """One line saying why an image could not be used."""
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}"[:500]


def read_error(path: str | Path) -> str:
    """'' when ``path`` decodes as an RGB image, else the reason it does not."""
    try:
        load_rgb(path)
    except Exception as err:  # noqa: BLE001 - any broken file is reported, not fatal
        return error_line(err)
    return ""


def _check(root: str, paths: list[str]) -> dict[str, str]:
    errors = {p: read_error(Path(root) / p) for p in paths}
    return {p: e for p, e in errors.items() if e}


MASKER_ERROR = "masker "
"""How a region store's error starts when the image was read but the masker failed on it."""


def masker_error(name: str, err: BaseException) -> str:
    """A store's error for an image the masker ``name`` failed on (the image itself is readable)."""
    return f"{MASKER_ERROR}{name}: {error_line(err)}"[:500]


def unreadable_images(dataset: Dataset, cache_dir: str | Path | Location, stores: Sequence[RegionStore] = ()) -> dict[str, str]:
    """Relative path -> reason, for every image of ``dataset`` that cannot be decoded (sorted);
    cached under ``cache_dir`` (a folder or a URI) by the file list's fingerprint. ``stores``: region
    stores of this dataset, whose decode errors answer it without decoding again."""
    fp = fingerprint(dataset_files(dataset.images, dataset.paths), {"check": "load_rgb"})
    cache = location(cache_dir) / f"{dataset.name}--unreadable--{fp}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    paths = list(dataset.paths)
    if stores:
        found = {p: e for p, e in stores[0].errors.items() if not e.startswith(MASKER_ERROR)}
    else:
        import ray

        check = ray.remote(num_cpus=1)(_check)
        parts = ray.get([check.remote(str(dataset.images), paths[i : i + CHUNK]) for i in range(0, len(paths), CHUNK)])
        found = {p: e for part in parts for p, e in part.items()}
    unreadable = dict(sorted(found.items()))
    if paths and len(unreadable) == len(paths):
        from orchestrator.config import SweepError

        first = next(iter(unreadable.items()))
        raise SweepError(f"datasets.{dataset.name}: none of its {len(paths)} images can be read, e.g. {first[0]}: {first[1]}")
    cache.write_bytes(json.dumps(unreadable, indent=1).encode())  # atomic: whole or not at all
    return unreadable
