"""Storage locations: a local path or a URI (``file://``, ``s3://``, ``gs://``, ``hdfs://``, ...) on a
pyarrow filesystem, with the few pathlib-like operations region stores and run folders need.

On a Ray cluster every node reads the sweep's ``storage`` and ``regions_dir``: a URI (or a path that
every node mounts) puts them on shared storage. ``location()`` parses one with
``pyarrow.fs.FileSystem.from_uri``; ``str()`` of a location gives back a string that ``location()``
parses to the same place on any node: a local path stays a plain path, a URI keeps its scheme, host
and query (``s3://bucket/runs?endpoint_override=minio:9000`` joined with ``regions`` is
``s3://bucket/runs/regions?endpoint_override=minio:9000``). Credentials come from each node's
environment, as pyarrow reads them.

Every file the project writes (region-store shards, checkpoints, prepared datasets, run state, report
files) goes through ``Location.write``: whole or not at all, under a hidden temporary name first,
then moved into place. It lives in ``samdata``, the lowest layer, so that every other package can
use the one writer.
"""

from __future__ import annotations

import fnmatch
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import pyarrow
import pyarrow.fs as pafs


class StorageError(OSError):
    """A storage path or URI that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class Location:
    """A file or folder on a pyarrow filesystem: ``fs`` and the path on it, plus its text form."""

    fs: pafs.FileSystem
    path: str
    uri: str

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, name: str) -> Location:
        name = str(name).strip("/")
        if not self.is_uri:
            return Location(self.fs, str(Path(self.path) / name), str(Path(self.uri) / name))
        parts = urlsplit(self.uri)
        return Location(self.fs, posixpath.join(self.path, name), urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}")))

    @property
    def is_uri(self) -> bool:
        return "://" in self.uri

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def parent(self) -> Location:
        if not self.is_uri:
            return Location(self.fs, str(Path(self.path).parent), str(Path(self.uri).parent))
        parts = urlsplit(self.uri)
        return Location(self.fs, posixpath.dirname(self.path.rstrip("/")), urlunsplit(parts._replace(path=posixpath.dirname(parts.path.rstrip("/")))))

    @property
    def local_path(self) -> Path | None:
        """The path on this machine when the location is on the local file system (``file://`` too)."""
        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None

    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def iterdir(self) -> list[Location]:
        """The entries of this folder, sorted by name (none when it does not exist)."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted((self / posixpath.basename(i.path) for i in infos), key=lambda loc: loc.name)

    def glob(self, pattern: str) -> list[Location]:
        """Entries matching ``pattern``, one ``fnmatch`` pattern per path segment (``a*/b.json``)."""
        found = [self]
        for segment in pattern.strip("/").split("/"):
            found = [child for folder in found for child in folder.iterdir() if fnmatch.fnmatchcase(child.name, segment)]
        return found

    def mkdir(self, exist_ok: bool = True) -> None:
        """Create this folder and its parents; ``exist_ok=False`` refuses an existing one."""
        if not exist_ok and self.exists():
            raise FileExistsError(f"{self} exists already")
        self.fs.create_dir(self.path, recursive=True)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return stream.read()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write(self, content: bytes | Callable[[IO[bytes]], object]) -> None:
        """Write ``content`` (bytes, or a function writing to the open stream) whole or not at all: to
        a hidden temporary sibling first, then moved into place, so a killed or failed write (a full
        disk, Ctrl+C) leaves the previous file, if any, and no half file under this name."""
        self.parent.mkdir()
        tmp = self.temporary_sibling()
        try:
            with self.fs.open_output_stream(tmp.path) as stream:
                if isinstance(content, bytes):
                    stream.write(content)
                else:
                    content(stream)
            tmp.replace(self)
        except BaseException:  # a failed write leaves no temporary file behind
            tmp.delete()
            raise

    def write_bytes(self, data: bytes) -> None:
        self.write(data)

    def delete(self) -> None:
        """Delete this file if it exists (best effort: used to clean up after a failed write)."""
        try:
            if self.is_file():
                self.fs.delete_file(self.path)
        except OSError:
            pass

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def temporary_sibling(self) -> Location:
        """A fresh name beside this one (hidden, ``.tmp``) for writing before a move into place."""
        return self.parent / f".{self.name}.{uuid.uuid4().hex}.tmp"

    def replace(self, target: Location) -> None:
        """Move this file onto ``target`` (a rename on local disks; copy and delete on object stores)."""
        self.fs.move(self.path, target.path)

    def rmtree(self) -> None:
        """Delete this folder and everything under it (nothing when it does not exist)."""
        if self.is_dir():
            self.fs.delete_dir(self.path)


def location(spec: str | Path | Location, base: Path | None = None) -> Location:
    """Parse a local path (relative ones under ``base``, default the working directory) or a URI;
    raise StorageError naming it when the URI is malformed or names an unknown filesystem."""
    if isinstance(spec, Location):
        return spec
    text = str(spec)
    if "://" not in text:
        path = Path(text).expanduser()
        path = (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()
        return Location(pafs.LocalFileSystem(), str(path), str(path))
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pyarrow.ArrowInvalid, ValueError) as err:
        raise StorageError(f"bad URI {text!r}: {_first_line(err)}") from None
    except OSError as err:  # e.g. s3 without a region: pyarrow asks the bucket, over the network
        raise StorageError(f"{text} is unreachable: {_first_line(err)}") from None
    parts = urlsplit(text)
    if parts.path.rstrip("/"):
        text = urlunsplit(parts._replace(path=parts.path.rstrip("/")))
    return Location(fs, path.rstrip("/") or path, text)


def check_reachable(loc: Location) -> None:
    """Raise StorageError naming ``loc`` when its filesystem does not answer (a missing folder is fine)."""
    try:
        loc.fs.get_file_info(loc.path)
    except OSError as err:
        raise StorageError(f"{loc} is unreachable: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
