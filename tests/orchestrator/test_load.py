"""A load test: many tiny trials on the 2 CPUs of the test session's Ray, each ending as exactly one
FINISHED MLflow child run with every epoch once (the sweep's own bookkeeping at scale: 52 child runs
made by the driver, 52 Tune trials, 52 trials writing to one SQLite tracking store at once)."""

from pathlib import Path

import pytest
from mlflow import MlflowClient

from orchestrator.sweep import run_sweep
from tests.orchestrator.sweep_files import TINY_SIMCLR

TRIALS = 52


@pytest.mark.slow
def test_fifty_two_tiny_trials_end_as_one_finished_child_run_each(ray_session, tmp_path: Path):
    """8 images of 32 px, 16 px views, the narrowest ResNet, 1 epoch, one KNN and a 1-epoch probe:
    what is left is the orchestration itself, 52 times."""
    sweep = tmp_path / "load.yaml"
    sweep.write_text(TINY_SIMCLR.format(name="load", root=tmp_path, scenes=8, epochs=1, seeds=list(range(TRIALS)),
                                        resources="{cpu: 1, max_failures: 1}", storage=tmp_path / "runs"))
    lines: list[str] = []
    assert run_sweep(str(sweep), log=lines.append) == 0, "\n".join(lines[-20:])
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("load").experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(r.data.params["seed"]) for r in children) == list(range(TRIALS))  # one run per trial, none twice
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in children)
    for run in children:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "knn_top1/shapes")] == [1]
        assert 0 <= run.data.metrics["linear_top1/shapes"] <= 1
    run_dir = next((tmp_path / "runs").glob("load-*"))
    assert len(list(run_dir.glob("*/checkpoint_000000"))) == TRIALS  # each trial's one epoch checkpointed by Tune
