"""Frozen encoders in the report: reference rows after the trained ones, marked as not pretrained by
the sweep (random weights marked as such), read back from a real MLflow database."""

from orchestrator import frozen
from orchestrator.report import collect, configurations, write_report
from orchestrator.rundirs import write_state
from orchestrator.tracking import TrialTracker, child_run, open_experiment, start_sweep
from selfsup.config import TrainConfig


def frozen_params(model: str, weights: str, seed: int) -> dict:
    train = TrainConfig(method="frozen", seed=seed, method_params={"encoder": model, "model": model, "weights": weights}).resolved()
    return frozen.params(train)


def test_frozen_encoders_are_reference_rows_marked_as_not_pretrained(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = open_experiment(uri, "mixed")
    parent = start_sweep(uri, experiment, "mixed-1", {})
    for seed in (0, 1):
        for tau, final in ((0.07, 0.5), (0.5, 0.4)):
            params = {"method": "simclr", "sampling": "random", "masker": "-", "c": "-", "temperature": tau, "epochs": 2, "seed": seed, "workers": 0}
            tracker = TrialTracker(uri, child_run(uri, experiment, parent, f"simclr-{tau}-{seed}", params))
            for epoch in (1, 2):
                tracker.log_epoch({"epoch": epoch, "knn_top1/toy": final * epoch / 2, **({"linear_top1/toy": final} if epoch == 2 else {})})
            tracker.finish()
        for model, weights, knn in (("dinov2_vits14", "/models/dinov2_vits14_pretrain.pth", 0.9), ("sam_vit_tiny", "random", 0.3)):
            tracker = TrialTracker(uri, child_run(uri, experiment, parent, f"frozen-{model}-{seed}", frozen_params(model, weights, seed)))
            tracker.log_epoch({"epoch": 1, "knn_top1/toy": knn + 0.01 * seed, "linear_top1/toy": knn + 0.02})
            tracker.finish()
    run_dir = tmp_path / "runs" / "mixed-20261130-000000"
    run_dir.mkdir(parents=True)
    write_state(run_dir, {"sweep": "mixed", "experiment_id": experiment, "tracking_uri": uri, "parent_run_id": parent})

    configs = configurations(collect(uri, experiment, parent))
    labels = [c.label for c in configs]
    assert labels == [
        "simclr τ=0.07",  # the frozen rows' settings (model, weights, ...) do not leak into the trained labels
        "simclr τ=0.5",
        "dinov2_vits14, frozen (dinov2_vits14_pretrain.pth; reference, not pretrained by this sweep)",
        f"sam_vit_tiny, frozen ({frozen.RANDOM_LABEL}; not pretrained by this sweep)",
    ]
    md, csv, figure = write_report(uri, experiment, parent, run_dir, "mixed")
    text = md.read_text()
    dino = next(line for line in text.splitlines() if line.startswith("| dinov2_vits14, frozen"))
    assert "| 2 | 90.5 ± 0.7 | 92.0 ± 0.0 |" in dino  # KNN over the two seeds, then the probe
    assert "*Reference rows* (2" in text and "**not pretrained by this sweep**" in text and frozen.RANDOM_LABEL in text
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert "dinov2_vits14, frozen" in csv.read_text()
