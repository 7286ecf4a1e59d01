"""Downloads through torchvision's own dataset classes, with one clear line when they fail.

torchvision prints its attempts and raises multi-line errors; here its output is kept quiet, a
socket timeout stops a blocked connection from hanging forever, and any failure becomes one
:class:`DataError` naming the URL and what to do instead.
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Callable

from samdata import DataError

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
