"""MLflow bookkeeping: one parent run per sweep, one child run per trial, found again by tags.

Ray's ``MLflowLoggerCallback`` makes a second run for a trial after ``Tuner.restore``, so runs are
managed here instead. The driver creates the experiment, the parent run and every child run before
any trial starts (one writer at a time on a SQLite database). A trial finds its child run by its
``trial_id`` tag under the parent, logs each epoch's metrics with step = epoch, and skips steps
the run already has: a retried or resumed trial never makes a second run, nor a second point.

An unreachable tracking server never stops training: a trial keeps the epochs it could not send
and sends them, in order, once the server answers again; every epoch is also in the trial's
checkpoints, from which the driver logs what is still missing at the end of the sweep (or on
``--resume``). After a failed call the run's history is read again before anything is re-sent, so
an epoch that reached the server just before the connection broke is not logged twice.

``mlflow`` is imported lazily (it costs seconds to import).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "trial_id"
SWEEP_TAG = "s3same.sweep"
KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
"""The experiment tag MLflow 3's UI reads to choose an experiment's view, and its value for model
training (the UI's ``ExperimentKind`` enum: ``genai_development``, ``custom_model_development``,
``finetuning``, ...; read in the installed mlflow 3.17's server/js bundle). Without it the UI opens
a new experiment on its GenAI overview."""
T = TypeVar("T")


class TrackingError(RuntimeError):
    """The tracking server or database cannot be used. ``unreachable``: it did not answer (refused,
    timed out, no route), as opposed to answering with an error (a bad request, a deleted run, a 500)."""

    def __init__(self, message: str, unreachable: bool = True):
        super().__init__(message)
        self.unreachable = unreachable


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from or while handling (MLflow wraps requests' errors)."""
    out: list[BaseException] = []
    while err is not None and err not in out:
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


def no_answer(err: BaseException) -> bool:
    """Whether ``err`` means the tracking store did not answer (worth trying again), not that it
    answered with an error: a refused or timed-out connection, or a SQLite database locked by another
    writer. An HTTP error answer (4xx, or 5xx after MLflow's own retries) is not."""
    import requests

    for e in _chain(err):
        if isinstance(e, requests.exceptions.RetryError):
            return False  # urllib3 gave up on repeated error answers: the server answered
        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)):
            return True
        if "database is locked" in str(e):
            return True
    return False


def _what_it_said(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def default_uri() -> str:
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _client(uri: str):  # noqa: ANN202 - mlflow is imported lazily
    # an unreachable HTTP server fails in seconds, not after MLflow's default minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _retry(fn: Callable[[], T], what: str, tries: int = 5) -> T:
    """Call ``fn``, trying again a few times only when the store did not answer (a refused connection,
    SQLite's 'database is locked' when two trials write at once); an error answer fails at once and
    the TrackingError says what the server said."""
    for attempt in range(tries):
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - mlflow raises many kinds
            unreachable = no_answer(err)
            if attempt == tries - 1 or not unreachable:
                said = "no answer" if unreachable else "the server answered"
                raise TrackingError(f"MLflow: {what} failed ({said}): {_what_it_said(err)}", unreachable) from err
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def open_experiment(uri: str, name: str) -> str:
    """The id of experiment ``name`` (created if needed); one line when the store does not answer,
    answers with an error, or holds a deleted experiment of that name (MLflow keeps those)."""
    client = _client(uri)
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return client.create_experiment(name, tags={KIND_TAG: TRAINING_KIND})
        if experiment.lifecycle_stage != "deleted" and KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, KIND_TAG, TRAINING_KIND)  # made before the tag was set
    except Exception as err:  # noqa: BLE001
        if no_answer(err):
            raise TrackingError(f"MLflow tracking at {uri} is unreachable: {_what_it_said(err)}") from None
        raise TrackingError(f"MLflow tracking at {uri} answered with an error: {_what_it_said(err)}", unreachable=False) from None
    if experiment.lifecycle_stage == "deleted":
        store = f" --backend-store-uri {uri}" if not uri.startswith("http") else ""
        raise TrackingError(
            f"MLflow experiment {name!r} (id {experiment.experiment_id}) at {uri} was deleted, and MLflow keeps deleted "
            f"experiments' names: restore it (MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id "
            f"{experiment.experiment_id}), remove it for good (mlflow gc{store} --experiment-ids {experiment.experiment_id}), "
            "or set tracking.experiment to another name",
            unreachable=False,
        )
    return experiment.experiment_id


def start_sweep(uri: str, experiment_id: str, sweep_name: str, tags: Mapping[str, str], metrics: Mapping[str, float] | None = None) -> str:
    """The parent run of a sweep, with its tags and (step 0) metrics."""
    run = _client(uri).create_run(experiment_id, run_name=sweep_name, tags={SWEEP_TAG: sweep_name, **tags})
    if metrics:
        log_metrics(uri, run.info.run_id, metrics)
    return run.info.run_id


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float]) -> None:
    """Log metrics (step 0) to a run, e.g. a later round's view-pair purity to the parent."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    _retry(lambda: _client(uri).log_batch(run_id, metrics=batch), f"logging metrics to run {run_id}")


def runs_page(base: str, experiment_id: str) -> str:
    """The link to an experiment's runs in the MLflow 3 UI (read in its 3.17 bundle): the model
    training view (``workflowType``: the UI otherwise opens on its GenAI view, whatever the
    experiment's tag), the parent and its trials in one flat list sorted by name (the UI nests
    children under a collapsed parent when runs are sorted by date, its default), charts beside it
    (``compareRunsMode=CHART``: each trial's KNN curve)."""
    from urllib.parse import urlencode

    query = urlencode(
        {"workflowType": "machine_learning", "compareRunsMode": "CHART", "orderByKey": "tags.`mlflow.runName`", "orderByAsc": "true"}
    )
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def run_name(trial_id: str) -> str:
    """A trial's run name in the UI: its key with spaces for the commas (``samclr masker=gt c=1.3``)."""
    return trial_id.replace(",", " ")


def child_run(uri: str, experiment_id: str, parent_id: str, trial_id: str, params: Mapping[str, Any]) -> str:
    """The child run of ``trial_id`` under ``parent_id``, created (with its params) if missing."""
    client = _client(uri)
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'"
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=run_name(trial_id), tags={PARENT_TAG: parent_id, TRIAL_TAG: trial_id})
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


def read_artifact(uri: str, run_id: str, path: str) -> bytes | None:
    """A run's artifact file as bytes; None when the run has no such file."""
    client = _client(uri)
    folder = path.rpartition("/")[0]
    listed = _retry(lambda: client.list_artifacts(run_id, folder or None), f"listing the artifacts of run {run_id}")
    if path not in {a.path for a in listed}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = _retry(lambda: client.download_artifacts(run_id, path, tmp), f"reading artifact {path} of run {run_id}")
        return Path(local).read_bytes()


def set_tag(uri: str, run_id: str, key: str, value: str) -> None:
    _retry(lambda: _client(uri).set_tag(run_id, key, value), f"tagging run {run_id}")


def metric_history(uri: str, run_id: str, key: str) -> dict[int, float]:
    """A metric's points by step."""
    history = _retry(lambda: _client(uri).get_metric_history(run_id, key), f"reading {key} of run {run_id}")
    return {m.step: m.value for m in history}


def child_runs(uri: str, experiment_id: str, parent_id: str) -> list:
    client = _client(uri)
    return _retry(
        lambda: client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'", max_results=10000),
        "listing the trial runs",
    )


class TrialTracker:
    """A trial's view of its child run: every epoch's metrics logged exactly once, whatever restarts
    and tracking-server outages happen. Nothing here raises when the server is unreachable: epochs
    wait in ``pending`` and go out with the next call that gets through."""

    def __init__(self, uri: str, run_id: str, mark_running: bool = True):
        self.uri, self.run_id, self.mark_running = uri, run_id, mark_running
        self.client = _client(uri)
        self.logged_epochs: set[int] | None = None
        """Epochs the run has; None when unknown (never read, or a call failed since)."""
        self.pending: dict[int, dict[str, float]] = {}
        self.offline = False
        self.error: TrackingError | None = None
        """The last call's error while offline (None once the run has every epoch)."""
        self.flush()

    def log_epoch(self, metrics: Mapping[str, float]) -> bool:
        """Log one epoch's metrics (step = epoch) unless the run has it; False while unreachable."""
        self.pending[int(metrics["epoch"])] = dict(metrics)
        return self.flush()

    def log_history(self, history: Iterable[Mapping[str, float]]) -> bool:
        """Log every epoch of ``history`` the run does not have yet (a checkpoint's history)."""
        for metrics in history:
            self.pending[int(metrics["epoch"])] = dict(metrics)
        return self.flush()

    def flush(self) -> bool:
        """Send the pending epochs in order; True when the run has them all."""
        try:
            if self.logged_epochs is None:
                history = _retry(lambda: self.client.get_metric_history(self.run_id, "epoch"), "reading the run's history", 2)
                self.logged_epochs = {m.step for m in history}
                if self.mark_running:
                    _retry(lambda: self.client.update_run(self.run_id, status="RUNNING"), "marking the run as running", 2)
                    self.mark_running = False
            for epoch in sorted(self.pending):
                if epoch not in self.logged_epochs:
                    self._send(epoch, self.pending[epoch])
                    self.logged_epochs.add(epoch)
                del self.pending[epoch]
        except TrackingError as err:
            self.logged_epochs = None  # the last call may have reached the server: read again first
            self.error = err
            if not self.offline:
                state = "is unreachable" if err.unreachable else "answered with an error"
                warnings.warn(
                    f"MLflow tracking at {self.uri} {state} ({err}); training goes on, and the epochs "
                    "are kept and logged once it accepts them",
                    stacklevel=2,
                )
            self.offline = True
            return False
        if self.offline:
            warnings.warn(f"MLflow is back: run {self.run_id} has every epoch so far", stacklevel=2)
        self.offline = False
        self.error = None
        return True

    def _send(self, epoch: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, epoch) for k, v in metrics.items()]  # "epoch" marks the step as logged
        _retry(lambda: self.client.log_batch(self.run_id, metrics=batch), f"logging epoch {epoch}", 2)

    def finish(self, status: str = "FINISHED") -> bool:
        """Send what is pending and close the run; False (nothing raised) while unreachable: the
        driver closes the run at the end of the sweep."""
        if not self.flush():
            return False
        try:
            finish_run(self.uri, self.run_id, status)
        except TrackingError:
            return False
        return True


def close_trial_run(uri: str, run, history: Iterable[Mapping[str, float]], status: str) -> None:
    """The driver, at the end of a sweep: log the epochs of ``history`` (a trial's checkpointed
    metrics) that ``run`` is missing, then close it with ``status``; TrackingError if unreachable."""
    tracker = TrialTracker(uri, run.info.run_id, mark_running=False)
    if not tracker.log_history(history):
        err = tracker.error
        unreachable = err is None or err.unreachable
        state = "is unreachable" if unreachable else f"answered with an error ({err})"
        raise TrackingError(f"MLflow tracking at {uri} {state}: could not log the missing epochs of run {run.info.run_id}", unreachable)
    if run.info.status != status:
        finish_run(uri, run.info.run_id, status)
