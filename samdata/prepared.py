"""What a prepared data root is made of: files written atomically, a completion marker per dataset
part, and the report that compares what is there with the official counts.

Every file is written through ``samdata.storage`` (under a hidden temporary name, renamed into place),
so a killed run never leaves a half file under its final name (hidden files are never counted or
listed as images).
A part (``images``, ``instance_masks``, ...) is marked done in ``ROOT/.prepared-<dataset>.json``
only after all of it was written: a rerun redoes any part without its mark, keeping the files
already complete.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from samdata.image_files import list_images
from samdata.storage import location


def _marker_file(root: Path, dataset: str) -> Path:
    return root / f".prepared-{dataset}.json"


def done_parts(root: Path, dataset: str) -> dict[str, str | None]:
    """Parts marked done, each with the source it was prepared from (None: downloaded or found)."""
    try:
        return json.loads(_marker_file(root, dataset).read_text())["parts"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def mark_done(root: Path, dataset: str, part: str, source: str | None) -> None:
    parts = done_parts(root, dataset) | {part: source}
    location(_marker_file(root, dataset)).write(json.dumps({"parts": parts}, indent=1).encode())


def is_done(root: Path, dataset: str, part: str, source: str | None, complete: bool) -> bool:
    """Nothing to do for a part: complete on disk and, when a source is given, prepared from that source."""
    if not complete:
        return False
    parts = done_parts(root, dataset)
    return source is None or (part in parts and parts[part] == source)


def per_folder(paths: Iterable[str]) -> Counter[str]:
    """Files per top folder (city, class) of relative paths ``<folder>/<file>``."""
    return Counter(p.split("/", 1)[0] for p in paths if "/" in p)


def without_mask(images: Iterable[str], masks_dir: Path) -> list[str]:
    """Images (relative paths) with no ``<same path>.png`` under ``masks_dir``."""
    masks = set(list_images(masks_dir, (".png",))) if masks_dir.is_dir() else set()
    return [p for p in images if Path(p).with_suffix(".png").as_posix() not in masks]


def differing_md5(folder: Path, expected: Iterable[tuple[str, str]]) -> list[str]:
    """Files of ``folder`` whose MD5 is not the recorded one (``expected``: (name, md5) pairs)."""
    out = []
    for name, md5 in expected:
        digest = hashlib.md5(usedforsecurity=False)
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        if digest.hexdigest() != md5:
            out.append(name)
    return out


def shortfall(what: str, have: int, want: int, unit: str = "images") -> str:
    extra = f" ({have - want} more than the official count)" if have > want else ""
    return f"{what} has {have} of {want} {unit}{extra}"


def listed(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


@dataclass
class Report:
    """What a check found, line by line: facts, shortfalls (make the dataset incomplete), notes."""

    dataset: str
    root: Path
    entries: list[tuple[str, str]] = field(default_factory=list)

    def found(self, text: str) -> None:
        self.entries.append(("found", text))

    def short(self, text: str) -> None:
        self.entries.append(("short", text))

    def note(self, text: str) -> None:
        self.entries.append(("note", text))

    @property
    def shortfalls(self) -> list[str]:
        return [text for kind, text in self.entries if kind == "short"]

    @property
    def complete(self) -> bool:
        return not self.shortfalls

    def lines(self) -> list[str]:
        out = [f"{self.dataset}: {'MISSING: ' if kind == 'short' else ''}{text}" for kind, text in self.entries]
        n = len(self.shortfalls)
        out.append(
            f"{self.dataset}: complete under {self.root}"
            if not n
            else f"{self.dataset}: INCOMPLETE under {self.root} ({n} shortfall{'s' if n > 1 else ''} above)"
        )
        return out
