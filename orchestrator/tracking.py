"""MLflow bookkeeping: one parent run per sweep, one child run per trial, found again by tags.

Ray's ``MLflowLoggerCallback`` makes a second run for a trial after ``Tuner.restore``, so runs are
managed here instead. The driver creates the experiment, the parent run and every child run before
any trial starts (one writer at a time on a SQLite database). A trial finds its child run by its
``trial_id`` tag under the parent, logs each epoch's metrics with step = epoch, and skips steps
the run already has: a retried or resumed trial never makes a second run, nor a second point.

``mlflow`` is imported lazily (it costs seconds to import).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "trial_id"
SWEEP_TAG = "s3same.sweep"
T = TypeVar("T")


class TrackingError(RuntimeError):
    """The tracking server or database cannot be used."""


def default_uri() -> str:
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _client(uri: str):  # noqa: ANN202 - mlflow is imported lazily
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _retry(fn: Callable[[], T], what: str, tries: int = 5) -> T:
    """SQLite says 'database is locked' when two trials write at once: try again a few times."""
    for attempt in range(tries):
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - mlflow raises many kinds
            if attempt == tries - 1:
                raise TrackingError(f"MLflow: {what} failed: {str(err).splitlines()[0]}") from err
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def open_experiment(uri: str, name: str) -> str:
    """The id of experiment ``name`` (created if needed); a clear error when the store is unreachable."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    client = _client(uri)
    try:
        experiment = client.get_experiment_by_name(name)
    except Exception as err:  # noqa: BLE001
        raise TrackingError(f"MLflow tracking at {uri} is unreachable: {str(err).splitlines()[0]}") from None
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name)


def start_sweep(uri: str, experiment_id: str, sweep_name: str, tags: Mapping[str, str]) -> str:
    run = _client(uri).create_run(experiment_id, run_name=sweep_name, tags={SWEEP_TAG: sweep_name, **tags})
    return run.info.run_id


def child_run(uri: str, experiment_id: str, parent_id: str, trial_id: str, params: Mapping[str, Any]) -> str:
    """The child run of ``trial_id`` under ``parent_id``, created (with its params) if missing."""
    client = _client(uri)
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'"
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=trial_id, tags={PARENT_TAG: parent_id, TRIAL_TAG: trial_id})
    from mlflow.entities import Param

    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())])
    return run.info.run_id


def finish_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    _retry(lambda: _client(uri).set_terminated(run_id, status), f"closing run {run_id}")


def log_artifact(uri: str, run_id: str, path: Path, folder: str | None = None) -> None:
    """Attach a file to a run (under the artifact ``folder`` when given)."""
    _retry(lambda: _client(uri).log_artifact(run_id, str(path), folder), f"logging artifact {path.name}")


def log_files(uri: str, run_id: str, files: Mapping[str, bytes], folder: str | None = None) -> None:
    """Attach in-memory files (name -> content) to a run, under the artifact ``folder`` when given
    (MLflow uploads local files: they pass through a temporary folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
            log_artifact(uri, run_id, Path(tmp) / name, folder)


def set_tag(uri: str, run_id: str, key: str, value: str) -> None:
    _retry(lambda: _client(uri).set_tag(run_id, key, value), f"tagging run {run_id}")


def metric_history(uri: str, run_id: str, key: str) -> dict[int, float]:
    """A metric's points by step."""
    history = _retry(lambda: _client(uri).get_metric_history(run_id, key), f"reading {key} of run {run_id}")
    return {m.step: m.value for m in history}


def child_runs(uri: str, experiment_id: str, parent_id: str) -> list:
    return _client(uri).search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'", max_results=10000)


class TrialTracker:
    """A trial's view of its child run: logs epoch metrics once each, whatever restarts happen."""

    def __init__(self, uri: str, run_id: str):
        self.uri, self.run_id = uri, run_id
        self.client = _client(uri)
        history = _retry(lambda: self.client.get_metric_history(run_id, "epoch"), "reading the run's history")
        self.logged_epochs = {m.step for m in history}
        _retry(lambda: self.client.update_run(run_id, status="RUNNING"), "marking the run as running")

    def log_epoch(self, metrics: Mapping[str, float]) -> None:
        """Log one epoch's metrics (step = epoch) unless the run has that epoch already."""
        from mlflow.entities import Metric

        epoch = int(metrics["epoch"])
        if epoch in self.logged_epochs:
            return
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, epoch) for k, v in metrics.items()]  # "epoch" marks the step as logged
        _retry(lambda: self.client.log_batch(self.run_id, metrics=batch), f"logging epoch {epoch}")
        self.logged_epochs.add(epoch)

    def finish(self, status: str = "FINISHED") -> None:
        finish_run(self.uri, self.run_id, status)
