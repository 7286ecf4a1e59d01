"""Instance masks in the ``ground_truth`` masker's format, converted from a dataset's annotations.

The masker (``masking/maskers/ground_truth.py``) reads one single-channel PNG per image, at the
image's relative path with a ``.png`` suffix, same height and width: 0 where there is no instance,
instances numbered 1..n. Written as uint8 when n <= 255, else uint16.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from orchestrator.data.prepared import write_atomic
from orchestrator.data.sources import Source


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
            write_atomic(out, id_png(to_ids(annotation)))
        written += 1
    return written, kept
