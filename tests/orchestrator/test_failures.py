"""Faults caused for real during a sweep: a trial's worker process SIGKILLed mid-epoch, and the
MLflow tracking server stopped and restarted mid-sweep. Nothing is lost, nothing is logged twice."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from orchestrator.sweep import run_sweep
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

