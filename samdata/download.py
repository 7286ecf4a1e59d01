"""Downloads through torchvision's own dataset classes, with one clear line when they fail, and the
``prepare`` of the datasets torchvision can download.

torchvision prints its attempts and raises multi-line errors; here its output is kept quiet, a
socket timeout stops a blocked connection from hanging forever, and any failure becomes one
:class:`DataError` naming the URL and what to do instead.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from samdata import DataError
from samdata.prepared import Report, is_done, mark_done
from samdata.sources import extract, prepare_part, sort_sources

TIMEOUT_S = 60.0


def torchvision_download(dataset: str, url: str, fetch: Callable[[], object], instead: str) -> None:
    """Run ``fetch`` (a torchvision dataset built with ``download=True``) or raise one line naming ``url``."""
    print(f"{dataset}: downloading {url} (through torchvision) ...", flush=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            fetch()
    except Exception as err:  # noqa: BLE001 - urllib, ssl, socket and torchvision raise many kinds
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(err).__name__
        raise DataError(f"{dataset}: could not download {url} ({reason}); {instead}") from None
    finally:
        socket.setdefaulttimeout(previous)


def prepare_folder_or_download(
    dataset: str,
    root: Path,
    sources: Sequence[str | Path],
    *,
    folder: str,
    part: str,
    role: str,
    member: re.Pattern[str],
    url: str,
    fetch: Callable[[], object],
    instead: str,
    check: Callable[[bool | None], Report],
) -> Report:
    """``prepare`` of a torchvision dataset that lives in one folder of its archive (CIFAR-10, STL10).

    With a ``--source`` (the archive or its extracted ``folder``), the members matching ``member`` are
    extracted under ``root``; without one, torchvision downloads it (``fetch``). Either way the part
    is marked done, and a rerun that finds it complete does nothing. ``check(md5)`` reports the result:
    MD5s are compared only after something was written (``None``: when the counts are official)."""
    found = sort_sources(dataset, sources, {part: (rf"^{folder}/", role)}, tops=(folder,))
    complete = check(False).complete
    if part not in found and not is_done(root, dataset, part, None, complete):
        root.mkdir(parents=True, exist_ok=True)
        torchvision_download(dataset, url, fetch, instead)
        mark_done(root, dataset, part, None)
        worked = True
    else:
        worked = prepare_part(
            dataset, root, part, found.get(part), complete,
            lambda source, redo: str(extract(source, lambda n: n if member.match(n) else None, root)), absent=None,
        )
    return check(None if worked else False)
