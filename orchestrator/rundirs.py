"""Where a sweep's runs live: ``<storage>/<sweep name>-<timestamp>/`` with its state file.

The state file names the MLflow experiment, tracking URI and parent run of that sweep run; the
sweep writes it before Tune starts, ``--resume`` and the report read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_FILE = "s3same_sweep.json"


def latest_run_dir(storage: Path, sweep_name: str) -> Path | None:
    """The newest run of ``sweep_name`` under ``storage`` (None when it never ran)."""
    runs = sorted(p for p in Path(storage).glob(f"{sweep_name}-*") if (p / STATE_FILE).is_file())
    return runs[-1] if runs else None


def read_state(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / STATE_FILE).read_text())


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    (Path(run_dir) / STATE_FILE).write_text(json.dumps(state, indent=1))
