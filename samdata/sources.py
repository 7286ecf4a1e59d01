"""The sources a dataset is prepared from: zip archives, tar archives (any compression) or folders.

Reading is safe: a member whose name is absolute or has a ``..`` component rejects the whole
archive, and every tar member also goes through tarfile's ``data`` filter (no links leaving the
folder, no devices). Only regular files are ever written, each under a hidden temporary name
renamed into place, so an interrupted run leaves no half-written file under a final name; a file
already there with the member's size is kept, which makes a rerun cheap.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from samdata import DataError
from samdata.prepared import done_parts, is_done, mark_done
from samdata.storage import location

PEEK = 64
"""Members read from the start of a tar archive to tell what it holds (its top folders)."""


@dataclass(frozen=True)
class Member:
    """One regular file of a source: its POSIX path inside the source, size and opener."""

    name: str
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]


def safe_name(name: str, source: Path) -> str:
    """``name`` normalised (no ``.`` or empty parts); a :class:`DataError` when it could escape."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise DataError(f"{source}: member {name!r} is an absolute path or contains '..'; refusing this archive")
    return "/".join(p for p in parts if p not in ("", "."))


class ZipSource:
    """A zip archive, open only while it is read: its table of contents once here, its members
    inside ``members`` (closed when the iteration ends, however it ends), so no file handle outlives
    a use (as a TarSource)."""

    def __init__(self, path: Path):
        self.path = path
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        self._names = [safe_name(i.filename, path) + ("/" if i.is_dir() else "") for i in infos]

    def names(self) -> Sequence[str]:
        return self._names

    def members(self, dest: Path) -> Iterator[Member]:
        with zipfile.ZipFile(self.path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield Member(safe_name(info.filename, self.path), info.file_size, lambda info=info: archive.open(info))


class TarSource:
    def __init__(self, path: Path):
        if not hasattr(tarfile, "data_filter"):
            raise DataError("reading tar archives safely needs tarfile's data filter (Python 3.10.12+, 3.11.4+ or 3.12+)")
        self.path = path

    def names(self) -> Sequence[str]:
        """The first :data:`PEEK` member names: enough to see the top folders without a full pass."""
        out = []
        with tarfile.open(self.path, "r:*") as tar:
            for member in tar:
                out.append(safe_name(member.name, self.path) + ("/" if member.isdir() else ""))
                if len(out) >= PEEK:
                    break
        return out

    def members(self, dest: Path) -> Iterator[Member]:
        with tarfile.open(self.path, "r:*") as tar:
            for member in tar:
                name = safe_name(member.name, self.path)
                try:
                    tarfile.data_filter(member, str(dest))
                except tarfile.FilterError as err:
                    raise DataError(f"{self.path}: member {member.name!r} refused by tarfile's data filter: {err}") from None
                if member.isfile():
                    yield Member(name, member.size, lambda member=member, tar=tar: _tar_file(tar, member))


def _tar_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    f = tar.extractfile(member)
    assert f is not None  # a regular file always has a reader
    return f


class DirSource:
    """An extracted folder. Members are named relative to ``base``; ``only`` limits them to one
    top folder (``--source /x/imagenette2`` reads ``/x/imagenette2`` as ``imagenette2/...``)."""

    def __init__(self, path: Path, tops: Sequence[str]):
        self.path = path
        self.base, self.only = (path.parent, path.name) if path.name in tops else (path, None)

    def _walk(self) -> Iterator[Path]:
        start = self.base / self.only if self.only else self.base
        for folder, dirs, files in os.walk(start):
            dirs.sort()
            for f in sorted(files):
                if not f.startswith("."):
                    yield Path(folder) / f

    def names(self) -> Sequence[str]:
        """Folders two levels deep (``leftImg8bit/``, ``leftImg8bit/train/``): enough to tell what it holds."""
        out = [f"{self.only}/"] if self.only else []

        def visit(folder: Path, rel: str, depth: int) -> None:
            for p in sorted(folder.iterdir()):
                if p.is_dir() and not p.name.startswith("."):
                    out.append(f"{rel}{p.name}/")
                    if depth < 2:
                        visit(p, f"{rel}{p.name}/", depth + 1)

        visit(self.base / self.only if self.only else self.base, f"{self.only}/" if self.only else "", 1)
        return out

    def members(self, dest: Path) -> Iterator[Member]:
        for path in self._walk():
            yield Member(path.relative_to(self.base).as_posix(), path.stat().st_size, functools.partial(path.open, "rb"))


Source = ZipSource | TarSource | DirSource


def open_source(path: str | Path, dataset: str, tops: Sequence[str] = ()) -> Source:
    """A zip, a tar or a folder; ``tops`` are the dataset's top folder names (see :class:`DirSource`)."""
    path = Path(path).expanduser()
    if path.is_dir():
        return DirSource(path, tops)
    if not path.is_file():
        raise DataError(f"{dataset}: --source {path}: no such file or folder")
    if zipfile.is_zipfile(path):
        try:
            return ZipSource(path)
        except zipfile.BadZipFile as err:
            raise DataError(f"{dataset}: --source {path}: unreadable zip archive ({err})") from None
    try:
        if tarfile.is_tarfile(path):
            return TarSource(path)
    except OSError as err:
        raise DataError(f"{dataset}: --source {path}: unreadable archive ({err})") from None
    raise DataError(f"{dataset}: --source {path} is neither a zip archive, a tar archive nor a folder")


def source_id(source: Source) -> str:
    """What the completion marker records about a source: an archive's name and size, a folder's path."""
    if isinstance(source, DirSource):
        return str(source.path.resolve())
    return f"{source.path.name}:{source.path.stat().st_size}"


def sort_sources(dataset: str, paths: Sequence[str | Path], roles: Mapping[str, tuple[str, str]], tops: Sequence[str] = ()) -> dict[str, Source]:
    """Which source holds what: ``roles`` maps a role to (regex on member names, what to pass).

    One source may fill several roles (a folder holding images and annotations); a source filling
    none, or two sources for one role, is a :class:`DataError` naming what was expected."""
    found: dict[str, Source] = {}
    for path in paths:
        source = open_source(path, dataset, tops)
        names = source.names()
        hits = [role for role, (pattern, _) in roles.items() if any(re.search(pattern, n) for n in names)]
        if not hits:
            wanted = "; ".join(what for _, what in roles.values())
            raise DataError(f"{dataset}: --source {path} is not one of the expected sources ({wanted})")
        for role in hits:
            if role in found:
                raise DataError(f"{dataset}: two sources for {roles[role][1]}: {found[role].path} and {path}")
            found[role] = source
    return found


@dataclass
class Extracted:
    written: int = 0
    kept: int = 0

    def __str__(self) -> str:
        return f"{self.written} files written, {self.kept} already there"


def extract(source: Source, select: Callable[[str], str | None], dest: Path) -> Extracted:
    """Copy every member for which ``select`` gives a relative output path to ``dest/<path>``,
    keeping files already there with the member's size."""
    done = Extracted()
    for member in source.members(dest):
        rel = select(member.name)
        if rel is None:
            continue
        out = dest / rel
        if out.is_file() and out.stat().st_size == member.size:
            done.kept += 1
            continue
        with member.open() as f:
            location(out).write(lambda target, f=f: shutil.copyfileobj(f, target, 1 << 20))
        done.written += 1
    return done


def prepare_part(
    dataset: str,
    root: Path,
    part: str,
    source: Source | None,
    complete: bool,
    work: Callable[[Source, bool], str],
    absent: str | None,
) -> bool:
    """Prepare one part of a dataset (``images``, ``instance_masks``, ...) unless there is nothing to do.

    Nothing to do: the part is complete on disk and, when a source is given, was last completed from
    that very source. Otherwise ``work(source, redo)`` writes it and returns a one-line summary, and
    the part is marked done (returns whether it did); ``redo`` is true when the part was completed from another source before
    (rewrite everything), false when resuming an interrupted run (keep what is there). With no source
    and the part incomplete, ``absent`` is the error (None: an optional part, left out)."""
    sid = source_id(source) if source is not None else None
    if is_done(root, dataset, part, sid, complete):
        print(f"{dataset}: {part}: complete, nothing to do")
        return False
    if source is None:
        if absent is not None:
            raise DataError(f"{dataset}: {absent}")
        return False
    parts = done_parts(root, dataset)
    redo = part in parts and parts[part] != sid
    print(f"{dataset}: {part}: reading {source.path} ...", flush=True)
    summary = work(source, redo)
    mark_done(root, dataset, part, sid)
    print(f"{dataset}: {part}: {summary}", flush=True)
    return True
