"""The per-trial summary: its columns are the settings that tell the sweep's trials apart, read back
from a real MLflow database whose child runs carry the plan's params (as a sweep logs them)."""

import csv
import io

from orchestrator.config import parse_sweep
from orchestrator.plan import configuration, make_plan
from orchestrator.report import collect, configurations
from orchestrator.summary import markdown, summary_rows, to_csv
from orchestrator.tracking import TrialTracker, child_run, open_experiment, start_sweep
from tests.orchestrator.test_config import GOOD
from tests.orchestrator.test_report import row


def logged_sweep(tmp_path, text: str):
    """Plan the sweep file, then a child run per trial with the trial's params (``Trial.params``, as
    the sweep's driver logs them) and a final KNN and linear top-1 of 0.5 + 0.01 x its index."""
    plan = make_plan(parse_sweep(text, "<s>"))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = open_experiment(uri, "t")
    parent = start_sweep(uri, experiment, "t-1", {})
    for i, trial in enumerate(plan.trials):
        tracker = TrialTracker(uri, child_run(uri, experiment, parent, trial.key, trial.params()))
        tracker.log_epoch({"epoch": 1, "knn_top1/shapes": 0.5 + 0.01 * i, "linear_top1/shapes": 0.5 + 0.01 * i})
        tracker.finish()
    return plan, uri, experiment, parent


def min_scale_sweep(tmp_path, axis: str = "  min_scale: [0.08, 0.2]\n") -> str:
    text = GOOD.format(root=tmp_path / "data").replace("  method: [simclr, samclr]", "  method: [simclr, dino]")
    return text.replace("  c: [1.0, 1.3]\n", axis).replace("  masker: [gt]\n", "")


def test_a_new_grid_axis_is_a_column_of_the_per_trial_table(tmp_path):
    plan, uri, experiment, parent = logged_sweep(tmp_path, min_scale_sweep(tmp_path))
    assert sorted(t.key for t in plan.trials) == ["dino", "simclr,min_scale=0.08", "simclr,min_scale=0.2"]
    rows = summary_rows(uri, experiment, parent)
    text = markdown(rows)
    header = row(text, "trial")
    # temperature: SimCLR's 0.5, DINO has none; DINO's own head sizes differ from SimCLR's only by preset
    assert header == ["trial", "method", "temperature", "min_scale", "status", "knn_top1/shapes", "linear_top1/shapes"]
    assert row(text, "simclr,min_scale=0.2")[:4] == ["simclr,min_scale=0.2", "simclr", "0.5", "0.2"]
    assert row(text, "simclr,min_scale=0.08")[3] == "0.08" and row(text, "dino")[3] == ""
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert {r["trial"]: r["min_scale"] for r in table} == {"dino": "", "simclr,min_scale=0.08": "0.08", "simclr,min_scale=0.2": "0.2"}


def test_a_setting_every_trial_shares_is_no_column(tmp_path):
    _, uri, experiment, parent = logged_sweep(tmp_path / "one", min_scale_sweep(tmp_path / "one", ""))
    header = row(markdown(summary_rows(uri, experiment, parent)), "trial")
    assert "min_scale" not in header and "epochs" not in header and header[:3] == ["trial", "method", "temperature"]


def test_a_trials_configuration_is_the_same_in_the_plan_and_read_back_from_mlflow(tmp_path):
    """One definition (``plan.configuration``): the report groups the seeds of a plan's trials into the
    configuration the plan gives them, a new axis (min_scale) included."""
    text = min_scale_sweep(tmp_path).replace("name: t\n", "name: t\nseeds: [0, 1]\n")
    plan, uri, experiment, parent = logged_sweep(tmp_path, text)
    planned = {configuration(t.params()) for t in plan.trials}
    assert len(plan.trials) == 6 and len(planned) == 3
    assert any(("min_scale", "0.2") in c for c in planned)
    configs = configurations(collect(uri, experiment, parent))
    assert {tuple(sorted(c.setting.items())) for c in configs} == planned
    assert all(len(c.trials) == 2 for c in configs)
