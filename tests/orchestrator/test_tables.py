"""The paper's table sweeps: planned with --dry-run before the data exists, run end to end with --smoke."""

from pathlib import Path

import pytest
from mlflow import MlflowClient

from orchestrator.config import load_sweep
from orchestrator.plan import make_plan
from orchestrator.sweep import main, run_sweep

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
TABLES = {
    "table1": ("cityscapes", 1600, {"moco", "dino", "simclr", "samclr"}),
    "table2": ("ade20k", 250, {"moco", "dino", "simclr", "samclr"}),
    "table3": ("imagenette", 800, {"swav", "dino", "simclr", "samclr"}),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_table_sweeps_hold_the_paper_settings_and_dry_run_without_data(table, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    dataset, epochs, methods = TABLES[table]
    plan = make_plan(load_sweep(EXPERIMENTS / f"{table}.yaml"), dry_run=True)
    assert {t.train.method for t in plan.trials} == methods
    for trial in plan.trials:
        tc = trial.train
        assert (tc.epochs, tc.batch_size, tc.image_size, tc.backbone_width, tc.c) == (epochs, 256, 128, 64, 1.3)
        assert trial.dataset == dataset
    samclr = next(t for t in plan.trials if t.train.method == "samclr")
    assert (samclr.train.method_params["temperature"], samclr.train.sampling, samclr.masker) == (0.07, "regions", "hqsam")
    assert plan.mask_jobs[0].config.min_area == 1000 and plan.mask_jobs[0].config.params["model_type"] == "vit_h"
    assert {e.name for e in plan.eval_sets} == {"cifar10", "stl10", "imagenette"}
    assert plan.sweep.eval.settings.every == 10
    assert any(f"datasets.{dataset}.root" in m for m in plan.missing)
    assert main([str(EXPERIMENTS / f"{table}.yaml"), "--dry-run"]) == 0
    assert "missing: " in capsys.readouterr().out
    assert main([str(EXPERIMENTS / f"{table}.yaml")]) == 2  # a real run stops before Ray
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("table", sorted(TABLES))
def test_table_sweeps_run_end_to_end_in_smoke_mode(ray_session, table, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_sweep(str(EXPERIMENTS / f"{table}.yaml"), smoke=True, log=lambda _: None) == 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name(f"{table}-smoke")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "trial_id" in r.data.tags]
    assert {r.data.params["method"] for r in runs} == TABLES[table][2]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert {f"linear_top1/{s}" for s in ("cifar10", "stl10", "imagenette")} <= set(run.data.metrics)
