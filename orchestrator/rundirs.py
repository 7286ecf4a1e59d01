"""Where a sweep's runs live: ``<storage>/<sweep name>-<timestamp>/`` with its state file.

The state file names the MLflow experiment, tracking URI and parent run of that sweep run; the
sweep writes it before Tune starts, ``--resume`` and the report read it. ``storage`` is a local
folder or a URI (``masking.storage``), so all of this works on shared storage too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from masking.storage import Location, StorageError, check_reachable, location
from orchestrator.config import SweepError

STATE_FILE = "s3same_sweep.json"


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


def latest_run_dir(storage: str | Path | Location, sweep_name: str) -> Location | None:
    """The newest run of ``sweep_name`` under ``storage`` (None when it never ran)."""
    runs = [p for p in location(storage).glob(f"{sweep_name}-*") if (p / STATE_FILE).is_file()]
    return runs[-1] if runs else None  # names end with a sortable timestamp


def read_state(run_dir: str | Path | Location) -> dict[str, Any]:
    return json.loads((location(run_dir) / STATE_FILE).read_text())


def write_state(run_dir: str | Path | Location, state: dict[str, Any]) -> None:
    """Replace the state file whole (a killed write leaves the previous one)."""
    (location(run_dir) / STATE_FILE).write_text(json.dumps(state, indent=1))
