"""A sweep with frozen encoders beside a trained trial, on Ray with a real MLflow database: each
encoder is a child run with one point of the same metrics, and the report shows it as a reference row."""

import pytest
from mlflow import MlflowClient

from orchestrator.sweep import run_sweep
from tests.orchestrator.sweep_files import edit
from tests.orchestrator.test_sweep import SWEEP as TINY

SWEEP = edit(
    TINY,
    ("name: tiny\n", "name: frozen\n"),
    ("scenes: 24,", "scenes: 16,"),
    ("maskers:\n  gt: {{name: ground_truth, min_area: 100}}\n", """\
encoders:
  dino: {{model: dinov2_vits14, weights: random, input_size: 28}}
  r18: {{model: resnet18, weights: {root}/resnet18.pth, input_size: 32}}
"""),
    ("  method: [simclr, samclr]\n  masker: [gt]\n", "  method: [simclr, frozen]\n  encoder: [dino, r18]\n"),
    ("max_failures: 1}}", "max_failures: 0}}"),
    ("experiment: tiny}}", "experiment: frozen}}"),
)
"""test_sweep's tiny sweep with two frozen encoders beside SimCLR instead of the masker and SAMCLR."""

@pytest.mark.slow
def test_frozen_encoders_run_as_child_runs_and_report_as_reference_rows(ray_session, tmp_path):
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    sweep = tmp_path / "frozen.yaml"
    sweep.write_text(SWEEP.format(root=tmp_path, epochs=2))
    lines = []
    assert run_sweep(str(sweep), log=lines.append) == 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("frozen").experiment_id])
    children = {r.data.tags["trial_id"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == ["frozen,encoder=dino", "frozen,encoder=r18", "simclr"]
    for key in ("frozen,encoder=dino", "frozen,encoder=r18"):
        run = children[key]
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "knn_top1/shapes")] == [1]
        assert 0 <= run.data.metrics["linear_top1/shapes"] <= 1 and "train/loss" not in run.data.metrics
    assert children["frozen,encoder=r18"].data.params["weights"] == str(tmp_path / "resnet18.pth")
    assert [m.step for m in client.get_metric_history(children["simclr"].info.run_id, "knn_top1/shapes")] == [1, 2]
    report = next((tmp_path / "runs").glob("frozen-*/report/report.md")).read_text()
    assert "| resnet18, frozen (resnet18.pth, 32 px; reference, not pretrained by this sweep) | 1 |" in report
    assert "| dinov2_vits14, frozen (random weights: an architecture check, not a reference, 28 px; not pretrained by this sweep) | 1 |" in report
