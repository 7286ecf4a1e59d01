"""Where a sweep's runs live: ``<storage>/<sweep name>-<timestamp>/`` with its state file.

The state file names the MLflow experiment, tracking URI and parent run of that sweep run; the
sweep writes it before Tune starts, ``--resume`` and the report read it. ``storage`` is a local
folder or a URI (``samdata.storage``), so all of this works on shared storage too.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from samdata.storage import Location, StorageError, check_reachable, location
from orchestrator.config import SweepError

STATE_FILE = "s3same_sweep.json"
ADDED = "added-"
"""Tune experiments of trials a ``--resume --allow-changes`` added live in ``<run>/added-N/``."""
ROUND = "round-"
"""Round ``N`` >= 2 of a sweep whose regions come from its own trials is ``<run>/round-N/`` (``orchestrator.rounds``)."""


def storage_location(field: str, spec: str, base: Path | None = None) -> Location:
    """``storage`` or ``regions_dir`` of a sweep file: a local path (relative ones under ``base``,
    default the working directory) or a URI, checked to answer (a dry run too: it looks for the
    region stores there); the error names the field."""
    try:
        loc = location(spec, base)
        check_reachable(loc)
    except StorageError as err:
        raise SweepError(f"{field}: {err}") from None
    return loc


def _run_name(sweep_name: str) -> re.Pattern:
    return re.compile(re.escape(sweep_name) + r"-\d{8}-\d{6}(-\d{2,})?")


def latest_run_dir(storage: str | Path | Location, sweep_name: str) -> Location | None:
    """The newest run of ``sweep_name`` under ``storage`` (None when it never ran)."""
    pattern = _run_name(sweep_name)
    runs = [p for p in location(storage).glob(f"{sweep_name}-*") if pattern.fullmatch(p.name) and (p / STATE_FILE).is_file()]
    return runs[-1] if runs else None  # names end with a sortable timestamp (and counter)


def new_run_dir(storage: str | Path | Location, sweep_name: str, now: float | None = None) -> Location:
    """A new, empty run folder ``<sweep>-<YYYYmmdd-HHMMSS>``; when a sweep of the same name started in
    the same second (another process, another terminal), the next free ``-01``, ``-02``, ... (names
    still sort in start order). On a local disk the folder is claimed atomically (``mkdir``), so two
    processes never share one; on object stores, which have no atomic folders, it is a check first."""
    root = location(storage)
    stamp = f"{sweep_name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    for n in range(100):
        run_dir = root / (stamp if n == 0 else f"{stamp}-{n:02d}")
        local = run_dir.local_path
        try:
            if local is not None:
                local.parent.mkdir(parents=True, exist_ok=True)
                local.mkdir()  # atomic: exactly one process creates it
            else:
                run_dir.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return run_dir
    raise SweepError(f"storage: 100 runs of sweep {sweep_name!r} started in the same second under {root}")


def read_state(run_dir: str | Path | Location) -> dict[str, Any]:
    return json.loads((location(run_dir) / STATE_FILE).read_text())


def write_state(run_dir: str | Path | Location, state: dict[str, Any]) -> None:
    """Replace the state file whole (a killed write leaves the previous one)."""
    (location(run_dir) / STATE_FILE).write_text(json.dumps(state, indent=1))


def addition_dir(n: int) -> str:
    """The folder (and Tune experiment name) of the ``n``-th set of trials added to a run."""
    return f"{ADDED}{n}"


def experiment_dirs(run_dir: str | Path | Location) -> list[Location]:
    """The run's Tune experiments: the run folder itself, then the ``added-N`` ones inside it, then
    the later rounds' ``round-N`` (``orchestrator.rounds``)."""
    root = location(run_dir)
    children = root.iterdir()  # one listing (a request on object storage)
    found = []
    for prefix in (ADDED, ROUND):
        numbered = [p for p in children if p.name.startswith(prefix) and p.name[len(prefix):].isdigit() and p.is_dir()]
        found += sorted(numbered, key=lambda p: int(p.name[len(prefix):]))
    return [root, *found]
