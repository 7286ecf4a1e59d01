"""Faults caused for real during a sweep: a trial's worker process SIGKILLed mid-epoch, and the
MLflow tracking server stopped and restarted mid-sweep. Nothing is lost, nothing is logged twice."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient

from orchestrator.sweep import run_sweep
from orchestrator.tracking import TrackingError, TrialTracker, child_run, open_experiment, start_sweep
from tests.orchestrator.test_sweep import SWEEP, runs_of


def one_trial_sweep(root: Path, epochs: int, scenes: int = 24, uri: str | None = None) -> Path:
    text = SWEEP.format(root=root, epochs=epochs).replace("  method: [simclr, samclr]", "  method: [simclr]")
    text = text.replace("synthetic: {scenes: 24,", f"synthetic: {{scenes: {scenes},")
    text = text.replace("max_failures: 1", "max_failures: 2")
    if uri is not None:
        text = text.replace(f'uri: "sqlite:///{root}/mlflow.db"', f'uri: "{uri}"')
    path = root / "one.yaml"
    path.write_text(text)
    return path


def results_of(root: Path) -> list[dict]:
    """What Tune's driver recorded for the trial, one dict per reported epoch (with the worker's pid)."""
    files = list((root / "runs").glob("tiny-*/*/result.json"))
    if not files:
        return []
    lines = files[0].read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]


@pytest.mark.slow
def test_killed_trial_worker_restarts_from_its_checkpoint(ray_session, tmp_path):
    """SIGKILL the process running a trial after its first checkpoint; Tune restarts it from the last
    checkpoint and the trial's one MLflow run holds every epoch exactly once."""
    epochs = 8
    sweep = one_trial_sweep(tmp_path, epochs, scenes=96)
    killed: dict = {}

    def kill_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            results = results_of(tmp_path)
            if results and list((tmp_path / "runs").glob("tiny-*/*/checkpoint_000000")):
                killed.update(pid=results[-1]["pid"], after_epoch=results[-1]["epoch"])
                os.kill(killed["pid"], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker)
    killer.start()
    start = time.time()
    assert run_sweep(str(sweep), log=lambda _: None) == 0
    killer.join()
    print(f"sweep {time.time() - start:.1f} s, killed {killed}")
    assert killed and killed["after_epoch"] < epochs, "the worker was not killed while the trial ran"
    results = results_of(tmp_path)
    pids = list(dict.fromkeys(r["pid"] for r in results))
    assert len(pids) == 2 and pids[0] == killed["pid"]  # a second worker took over
    resumed = [r["epoch"] for r in results if r["pid"] == pids[1]]
    assert resumed[0] > 1 and resumed[-1] == epochs  # from a checkpoint, not from scratch
    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and len(children) == 1 and children[0].info.status == "FINISHED"
    for key in ("train/loss", "knn_top1/shapes"):
        steps = [m.step for m in client.get_metric_history(children[0].info.run_id, key)]
        assert steps == list(range(1, epochs + 1)), key


class MlflowServer:
    """A real ``mlflow server`` (SQLite backend) on a free loopback port, stopped and started at will."""

    def __init__(self, folder: Path):
        self.folder = folder
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> None:
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.folder}/server.db",
               "--artifacts-destination", str(self.folder / "artifacts"), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1"]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server writes it while it runs
        self.proc = subprocess.Popen(cmd, cwd=self.folder, stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.folder / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"mlflow server did not start in {timeout} s")

    def stop(self) -> None:
        """Kill the server and everything it started: the port then refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


@pytest.mark.slow
def test_tracking_outage_mid_sweep_loses_no_epoch(ray_session, mlflow_server, tmp_path):
    """The tracking server dies after two epochs: the trial trains to the end; the sweep ends with a
    clear error; once the server is back, --resume logs every missing epoch, once."""
    if not mlflow_server.running:
        mlflow_server.start()
    epochs = 6
    sweep = one_trial_sweep(tmp_path, epochs, scenes=48, uri=mlflow_server.uri)
    sweep.write_text(sweep.read_text().replace("experiment: tiny", "experiment: outage"))

    def stop_server() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not list((tmp_path / "runs").glob("tiny-*/*/checkpoint_000001")):
            time.sleep(0.05)
        mlflow_server.stop()

    stopper = threading.Thread(target=stop_server)
    stopper.start()
    with pytest.raises(TrackingError, match="unreachable.*run the sweep again with --resume") as info:
        run_sweep(str(sweep), log=lambda _: None)
    stopper.join()
    assert "\n" not in str(info.value)
    results = results_of(tmp_path)
    assert [r["epoch"] for r in results] == list(range(1, epochs + 1))  # training went on
    assert len({r["pid"] for r in results}) == 1  # in the same worker: the outage was no trial failure
    mlflow_server.start()
    client = MlflowClient(mlflow_server.uri)
    (child,) = [r for r in client.search_runs([client.get_experiment_by_name("outage").experiment_id]) if "trial_id" in r.data.tags]
    logged = [m.step for m in client.get_metric_history(child.info.run_id, "train/loss")]
    assert 2 <= len(logged) < epochs  # the outage really cost the run some epochs
    assert run_sweep(str(sweep), resume=True, log=lambda _: None) == 0
    experiment = client.get_experiment_by_name("outage").experiment_id
    runs = client.search_runs([experiment])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    history = {m.step: m.value for m in client.get_metric_history(children[0].info.run_id, "train/loss")}
    steps = [m.step for m in client.get_metric_history(children[0].info.run_id, "train/loss")]
    assert steps == list(range(1, epochs + 1))
    assert [m.step for m in client.get_metric_history(children[0].info.run_id, "knn_top1/shapes")] == steps
    assert [history[r["epoch"]] for r in results] == pytest.approx([r["train/loss"] for r in results])
    assert {"summary.md", "summary.csv"} <= {a.path for a in client.list_artifacts(parents[0].info.run_id)}


@pytest.mark.slow
def test_trial_tracker_keeps_epochs_while_the_server_is_down(mlflow_server):
    """A trial's tracker never raises during an outage and sends what it kept once the server is back."""
    if not mlflow_server.running:
        mlflow_server.start()
    uri = mlflow_server.uri
    experiment = open_experiment(uri, "tracker-outage")
    run_id = child_run(uri, experiment, start_sweep(uri, experiment, "sweep", {}), "t", {"method": "simclr"})
    tracker = TrialTracker(uri, run_id)
    assert tracker.log_epoch({"epoch": 1, "train/loss": 1.0})
    mlflow_server.stop()
    start = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not tracker.log_epoch({"epoch": 2, "train/loss": 2.0})
        assert not tracker.log_epoch({"epoch": 3, "train/loss": 3.0})
        restarted = TrialTracker(uri, run_id)  # a trial restarted during the outage
        assert not restarted.log_history([{"epoch": 1, "train/loss": 1.0}, {"epoch": 2, "train/loss": 2.0}])
        assert not tracker.finish()
    assert time.time() - start < 60  # an outage costs seconds per epoch, not MLflow's minutes of retries
    assert any("unreachable" in str(w.message) for w in caught)
    assert sorted(tracker.pending) == [2, 3]
    mlflow_server.start()
    assert restarted.flush() and tracker.log_epoch({"epoch": 4, "train/loss": 4.0}) and tracker.finish()
    client = MlflowClient(uri)
    history = client.get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert client.get_run(run_id).info.status == "FINISHED"
