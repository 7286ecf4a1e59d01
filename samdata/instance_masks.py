"""The instance-mask format, and its conversion from a dataset's annotations.

One single-channel PNG per image, under a masks folder at the image's relative path with a ``.png``
suffix (``mask_file``), same height and width as the image: 0 where there is no instance, instances
numbered 1..n; uint8 when n <= 255, else uint16 (``id_png``). The synthetic generators and the
official datasets' conversions write it; the ``ground_truth`` masker and the view-pair purity read
it (``read_ids``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from samdata.image_files import DECODE_ERRORS

from samdata.sources import Source
from samdata.storage import location


def mask_file(masks_root: str | Path, image_path: str) -> Path:
    """Where the instance mask of the image at relative path ``image_path`` lies under ``masks_root``."""
    return (Path(masks_root) / image_path).with_suffix(".png")


def read_ids(file: str | Path) -> np.ndarray:
    """An instance-id PNG as an (H, W) int64 array; a file that is not one is a one-line ValueError
    (a missing one a FileNotFoundError) naming it."""
    try:
        with Image.open(file) as image:
            ids = np.asarray(image)
    except FileNotFoundError:
        raise FileNotFoundError(f"no instance mask {file}") from None
    except DECODE_ERRORS as err:
        raise ValueError(f"cannot read instance mask {file}: {err}") from None
    if ids.ndim != 2:
        raise ValueError(f"instance mask {file} must be a single-channel id image, got shape {ids.shape}")
    return ids.astype(np.int64)


def number_instances(keys: np.ndarray, is_instance: np.ndarray) -> np.ndarray:
    """Ids 1..n for the distinct values of ``keys`` where ``is_instance`` (in increasing key order), 0 elsewhere."""
    ids = np.zeros(keys.shape, np.int64)
    _, inverse = np.unique(keys[is_instance], return_inverse=True)
    ids[is_instance] = inverse.reshape(-1) + 1
    return ids


def id_png(ids: np.ndarray) -> bytes:
    """PNG bytes of an id image: uint8 when every id fits, uint16 otherwise."""
    dtype = np.uint8 if int(ids.max(initial=0)) <= 255 else np.uint16
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(ids.astype(dtype))).save(buf, format="PNG")
    return buf.getvalue()


def convert(
    source: Source,
    select: Callable[[str], str | None],
    to_ids: Callable[[Image.Image], np.ndarray],
    dest: Path,
    redo: bool,
) -> tuple[int, int]:
    """Write ``to_ids(annotation)`` for every member that ``select`` maps to a path under ``dest``.

    Masks already there are kept unless ``redo`` (a resumed run of the same conversion). Returns
    (written, kept)."""
    written = kept = 0
    for member in source.members(dest):
        rel = select(member.name)
        if rel is None:
            continue
        out = dest / rel
        if out.is_file() and not redo:
            kept += 1
            continue
        with member.open() as f, Image.open(io.BytesIO(f.read())) as annotation:
            location(out).write(id_png(to_ids(annotation)))
        written += 1
    return written, kept
