"""What a trial's checkpoints say about it, read back on the driver.

Every checkpoint a trial reports (``orchestrator.trial``) holds ``history.json``: the trial's MLflow
run id, its planned epochs and every epoch's metrics so far. At the end of a sweep the driver reads
the newest one of each trial to log whatever MLflow missed (a tracking server that was down) and to
tell finished trials from failed ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.rundirs import experiment_dirs
from samdata.storage import Location

HISTORY = "history.json"


def history_json(run_id: str, epochs: int, history: list[dict[str, Any]]) -> str:
    """The content of a checkpoint's ``history.json``."""
    return json.dumps({"run_id": run_id, "epochs": epochs, "history": history})


def checkpointed_histories(run_dir: str | Path | Location) -> dict[str, dict[str, Any]]:
    """Run id -> ``history.json`` of the newest readable checkpoint of each trial under ``run_dir``
    (a local folder or a URI), with that checkpoint's folder under ``checkpoint``; trials added to
    the run (``added-N/``) and later rounds' (``round-N/``) included. A checkpoint half-copied by a
    killed driver is passed over for the one before."""
    out: dict[str, dict[str, Any]] = {}
    trial_dirs = [p for experiment in experiment_dirs(run_dir) for p in experiment.iterdir() if p.is_dir()]  # sorted by name
    for trial_dir in trial_dirs:
        for file in sorted(trial_dir.glob(f"checkpoint_*/{HISTORY}"), key=str, reverse=True):
            try:
                data = json.loads(file.read_text())
            except (OSError, ValueError):
                continue
            out[data["run_id"]] = {**data, "checkpoint": file.parent}
            break
    return out


def reached_the_end(history: dict[str, Any] | None) -> bool:
    """Whether a ``history.json`` (see ``checkpointed_histories``) holds the trial's last epoch."""
    return history is not None and bool(history["history"]) and history["history"][-1]["epoch"] >= history["epochs"]
