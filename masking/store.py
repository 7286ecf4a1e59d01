"""Region store: every image's regions for one (dataset, masker configuration), in Parquet.

One file per (dataset, masker configuration), named by a fingerprint of the dataset's file list and
the masker configuration: same fingerprint -> the store is reused, a different one -> recomputed.
Rows: relative path, image width and height, kept boxes (flattened xyxy), areas, scores, an error
message for images that could not be read (counted, never fatal), and, for a masker with
``keep_masks``, the kept masks as run-length counts (``masking.rle``), read only when asked for.

Writing is crash-safe. Work in progress goes to shards in ``<store>.parts/`` (each shard written
to a temporary name and renamed, so a shard is whole or absent); ``finalize`` merges them into the
store file the same way. Only the final file reads as complete, and a rerun after a crash skips
every image already in a shard.

Stores are read and written through pyarrow filesystems (``samdata.storage``): ``regions_dir`` may
be a local folder or a URI (``s3://``, ``gs://``, ``file://``) that every node of a cluster reads.
A store file may carry metadata (string keys and values, e.g. the nodes that computed it).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from masking.regions import Regions
from masking.rle import decode
from samdata.storage import Location, location

SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("boxes", pa.list_(pa.int32())),
        ("areas", pa.list_(pa.int64())),
        ("scores", pa.list_(pa.float32())),
        ("error", pa.string()),
    ]
)
SCHEMA_WITH_MASKS = SCHEMA.append(pa.field("masks", pa.list_(pa.list_(pa.int32()))))
"""A store of a masker with ``keep_masks``: each kept region's mask as run-length counts (``masking.rle``)."""


META_PREFIX = "s3same."
"""Prefix of a store's own keys in the Parquet file's key-value metadata."""


@dataclass(frozen=True)
class ImageRegions:
    """One row of a store: an image's regions, or the reason it could not be read."""

    path: str
    width: int
    height: int
    regions: Regions
    error: str | None = None


def dataset_files(root: str | Path, paths: Sequence[str]) -> list[tuple[str, int]]:
    """(relative path, size in bytes) of each image: what a store's fingerprint depends on."""
    root = Path(root)
    return [(p, (root / p).stat().st_size) for p in paths]


def fingerprint(files: Iterable[tuple[str, int]], masker: Mapping) -> str:
    """Stable hash of a dataset's file list (relative paths and sizes) and a masker configuration."""
    h = hashlib.sha256()
    h.update(json.dumps(masker, sort_keys=True, default=str).encode())
    for path, size in sorted(files):
        h.update(f"\n{path}\t{size}".encode())
    return h.hexdigest()[:16]


def store_file(root: str | Path | Location, dataset: str, masker_name: str, fp: str) -> Location:
    return location(root) / f"{dataset}--{masker_name}--{fp}.parquet"


def _table(rows: Sequence[ImageRegions]) -> pa.Table:
    columns = {
        "path": [r.path for r in rows],
        "width": [r.width for r in rows],
        "height": [r.height for r in rows],
        "boxes": [r.regions.boxes.reshape(-1).tolist() for r in rows],
        "areas": [r.regions.areas.tolist() for r in rows],
        "scores": [r.regions.scores.tolist() for r in rows],
        "error": [r.error for r in rows],
    }
    if any(r.regions.rle is not None for r in rows):
        columns["masks"] = [r.regions.rle for r in rows]
        return pa.Table.from_pydict(columns, schema=SCHEMA_WITH_MASKS)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _schema_of(file: Location, masks: bool = True) -> pa.Schema:
    """The schema to read ``file`` with: with its masks when ``masks`` and it has them (the file's
    footer is read only then)."""
    if masks and "masks" in pq.read_schema(file.path, filesystem=file.fs).names:
        return SCHEMA_WITH_MASKS
    return SCHEMA


def _write_atomically(table: pa.Table, target: Location) -> None:
    target.write(lambda stream: pq.write_table(table, stream))


def _read(file: Location, **kwargs) -> pa.Table:
    return pq.read_table(file.path, filesystem=file.fs, **kwargs)


class RegionStore:
    """A complete store, loaded for O(1) lookup of an image's regions by relative path."""

    def __init__(self, rows: Iterable[ImageRegions], metadata: Mapping[str, str] | None = None):
        self._rows = {r.path: r for r in rows}
        self.metadata = dict(metadata or {})
        """What the writer recorded beside the rows (e.g. ``nodes``: which machines computed it)."""

    @classmethod
    def load(cls, path: str | Path | Location, min_area: int | None = None, masks: bool = False) -> RegionStore:
        """The store at ``path``; with ``min_area``, its regions smaller than that dropped (``at_least``);
        with ``masks``, the regions' masks too where the store kept them (training needs only boxes)."""
        store = cls._load(path, masks)
        return store if min_area is None else store.at_least(min_area)

    def at_least(self, min_area: int) -> RegionStore:
        """This store with only the regions of at least ``min_area`` px: exactly the store the same masker
        computes at that ``min_area`` when this one was computed at a smaller one, since
        ``masking.regions.select_regions`` drops small masks before the coarsest selection (no kept
        region depends on a smaller mask). A store of a larger ``min_area`` cannot serve a smaller one."""
        rows = []
        for row in self._rows.values():
            keep = row.regions.areas >= min_area
            if not keep.all():
                row = replace(row, regions=row.regions.subset(keep))
            rows.append(row)
        return RegionStore(rows, self.metadata)

    @classmethod
    def _load(cls, path: str | Path | Location, masks: bool = False) -> RegionStore:
        file = location(path)
        if not file.is_file():
            raise FileNotFoundError(f"region store {file} does not exist (or was never completed)")
        table = _read(file, schema=_schema_of(file, masks))
        stored = pq.read_metadata(file.path, filesystem=file.fs).metadata or {}
        metadata = {k.decode(): v.decode() for k, v in stored.items() if k.startswith(META_PREFIX.encode())}
        return cls(cls._rows_of(table), {k.removeprefix(META_PREFIX): v for k, v in metadata.items()})

    @staticmethod
    def _rows_of(table: pa.Table) -> Iterable[ImageRegions]:
        cols = table.to_pydict()
        rle = cols.get("masks", [None] * len(cols["path"]))
        for i, path in enumerate(cols["path"]):
            boxes = np.asarray(cols["boxes"][i], np.int32).reshape(-1, 4)
            regions = Regions(boxes, np.asarray(cols["areas"][i], np.int64), np.asarray(cols["scores"][i], np.float32), rle[i])
            yield ImageRegions(path, cols["width"][i], cols["height"][i], regions, cols["error"][i])

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def paths(self) -> list[str]:
        """The images the store has a row for (readable or not), in path order."""
        return list(self._rows)

    def __contains__(self, path: str) -> bool:
        return path in self._rows

    def __getitem__(self, path: str) -> ImageRegions:
        return self._rows[path]

    @property
    def has_masks(self) -> bool:
        """Whether this store holds its regions' masks (a ``keep_masks`` masker, loaded with ``masks``)."""
        return any(r.regions.rle is not None for r in self._rows.values())

    def masks(self, path: str) -> np.ndarray:
        """The kept regions' masks (K, H, W) bool of an image, in the order of its boxes."""
        row = self._rows[path]
        if row.regions.rle is None:
            raise ValueError(f"region store has no masks for {path}: its masker did not keep them (keep_masks), or it was loaded without")
        return decode(row.regions.rle, row.height, row.width)

    def boxes(self, path: str) -> np.ndarray:
        """Kept boxes of an image (K, 4); an image without regions or not in the store gets (0, 4)."""
        row = self._rows.get(path)
        return row.regions.boxes if row is not None else np.zeros((0, 4), np.int32)

    @property
    def errors(self) -> dict[str, str]:
        return {p: r.error for p, r in self._rows.items() if r.error}

    def summary(self) -> dict[str, float]:
        counts = [len(r.regions) for r in self._rows.values() if not r.error]
        return {
            "images": len(self._rows),
            "unreadable": len(self.errors),
            "regions_per_image": float(np.mean(counts)) if counts else 0.0,
            "images_without_region": int(sum(c == 0 for c in counts)),
        }


class StoreWriter:
    """Writes a store in resumable shards, then merges them into the final file."""

    def __init__(self, path: str | Path | Location):
        self.path = location(path)
        self.parts = self.path.parent / (self.path.name + ".parts")
        self.duplicates = 0
        """Rows ``finalize`` dropped because an earlier shard had the same path (0 unless an
        image was computed twice)."""

    def _shards(self) -> list[Location]:
        return self.parts.glob("shard-*.parquet")  # sorted by name; half-written shards are hidden .tmp files

    def done(self) -> set[str]:
        """Relative paths already written by this or an interrupted earlier run."""
        done: set[str] = set()
        for shard in self._shards():
            done.update(_read(shard, columns=["path"]).column("path").to_pylist())
        return done

    def write_shard(self, rows: Sequence[ImageRegions]) -> None:
        if not rows:
            return
        self.parts.mkdir()
        # names sort in write order, so finalize keeps the first row written for a path
        _write_atomically(_table(rows), self.parts / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet")

    def finalize(self, expected: Iterable[str], metadata: Mapping[str, str] | None = None, base: RegionStore | None = None) -> RegionStore:
        """Merge the shards (one row per path) into the store file, with ``metadata`` (strings);
        every expected path must be there. ``base``: a complete store whose rows the shards replace
        (images computed again) and complete (every other image)."""
        rows: dict[str, ImageRegions] = {}
        self.duplicates = 0
        for shard in self._shards():
            for row in RegionStore._rows_of(_read(shard, schema=_schema_of(shard))):
                self.duplicates += row.path in rows
                rows.setdefault(row.path, row)
        if base is not None:
            for path in base._rows:
                rows.setdefault(path, base[path])
        missing = [p for p in expected if p not in rows]
        if missing:
            raise RuntimeError(f"region store {self.path.name}: {len(missing)} images have no row, e.g. {missing[0]}")
        ordered = [rows[p] for p in sorted(rows)]
        table = _table(ordered).replace_schema_metadata({f"{META_PREFIX}{k}": str(v) for k, v in (metadata or {}).items()})
        self.path.parent.mkdir()
        _write_atomically(table, self.path)
        self.parts.rmtree()
        return RegionStore(ordered, metadata)
