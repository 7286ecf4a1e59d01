"""The report: numbers read back from a real MLflow database, aggregated the way a paper shows them."""

import csv
import io
import math

import pytest
from mlflow import MlflowClient

from orchestrator.report import main as report_main
from orchestrator.report import write_report
from orchestrator.rundirs import write_state
from orchestrator.tracking import TrialTracker, child_run, open_experiment, start_sweep

# (method, sampling, masker, c, temperature) -> final KNN top-1 of seeds 0, 1, 2
FINAL_KNN = {
    ("simclr", "random", "-", "-", 0.07): (0.30, 0.32, 0.34),
    ("simclr", "random", "-", "-", 0.5): (0.20, 0.22, 0.24),
    ("samclr", "regions", "gt", 1.3, 0.07): (0.50, 0.52, 0.57),
    ("samclr", "regions", "gt", 1.3, 0.5): (0.40, 0.41, 0.45),
}
UNTRAINED = {0: 0.15, 1: 0.17, 2: 0.16}


def fake_sweep(tmp_path, epochs=4):
    """Parent and child runs made by the tracking code a sweep uses, with known curves."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = open_experiment(uri, "fake")
    parent = start_sweep(uri, experiment, "fake-1", {})
    for (method, sampling, masker, c, tau), finals in FINAL_KNN.items():
        for seed, final in enumerate(finals):
            params = {"method": method, "sampling": sampling, "masker": masker, "c": c, "temperature": tau, "seed": seed, "epochs": epochs, "workers": 0}
            run = child_run(uri, experiment, parent, f"{method}-{tau}-{seed}", params)
            tracker = TrialTracker(uri, run)
            tracker.log_epoch({"epoch": 0, "knn_top1/toy": UNTRAINED[seed], "linear_top1/toy": UNTRAINED[seed] + 0.1})
            for epoch in range(1, epochs + 1):
                metrics = {"epoch": epoch, "train/loss": 5.0 - epoch, "knn_top1/toy": final * epoch / epochs}
                if epoch == epochs:
                    metrics["linear_top1/toy"] = final + 0.05
                tracker.log_epoch(metrics)
            tracker.finish()
    run_dir = tmp_path / "runs" / "fake-1"
    run_dir.mkdir(parents=True)
    write_state(run_dir, {"sweep": "fake", "experiment_id": experiment, "tracking_uri": uri, "parent_run_id": parent})
    return uri, experiment, parent, run_dir


def row(markdown: str, first_cell: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_report_aggregates_over_seeds_and_compares_at_matched_temperature(tmp_path):
    uri, experiment, parent, run_dir = fake_sweep(tmp_path)
    paper = tmp_path / "paper.yaml"
    paper.write_text("fake:\n  simclr: {knn/toy: 21.0}\n  samclr: {knn/toy: null}\n")
    md, table, figure = write_report(uri, experiment, parent, run_dir, "fake", paper)
    text = md.read_text()

    # paper-style rows: mean ± sample std over the three seeds, in %
    samclr = row(text, "samclr sampling=regions masker=gt c=1.3 τ=0.07")
    assert samclr[1] == "3" and samclr[2] == "53.0 ± 3.6" and samclr[3] == "58.0 ± 3.6"
    assert row(text, "simclr sampling=random τ=0.5")[2] == "22.0 ± 2.0"
    assert row(text, "untrained network (epoch 0)")[2:] == ["16.0 ± 1.0", "26.0 ± 1.0"]

    # matched temperature: region views minus whole-image views at the same tau, with the standard
    # error of the difference; the paper's pairing (0.07 against 0.5) beside it
    matched = [r for r in text.splitlines() if r.startswith("| matched τ |")]
    assert len(matched) == 2
    at_007 = row(text, "matched τ")
    se = 100 * math.sqrt(0.036055**2 / 3 + 0.02**2 / 3)
    assert at_007[1].endswith("τ=0.07") and at_007[2] == "simclr sampling=random τ=0.07"
    assert at_007[3] == f"+21.0 ± {se:.1f}"
    pairing = row(text, "paper's pairing")
    assert pairing[2] == "simclr sampling=random τ=0.5" and pairing[3].startswith("+31.0")

    # the paper's column: a number, its difference, and n/a where the paper has none
    assert "| simclr | knn/toy | several configurations | 21.0 | – |" in text
    assert "| samclr | knn/toy | several configurations | n/a | – |" in text

    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    knn = {(r["configuration"], r["metric"]): r for r in rows}
    assert float(knn[("simclr sampling=random τ=0.07", "knn")]["mean"]) == pytest.approx(0.32)
    assert knn[("simclr sampling=random τ=0.07", "knn")]["seeds"] == "3"
    png = figure.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    client = MlflowClient(uri)
    logged = {a.path for a in client.list_artifacts(parent, "report")}
    assert logged == {"report/report.md", "report/results.csv", "report/knn_curves.png"}


def test_paper_numbers_beside_a_single_configuration(tmp_path):
    uri, experiment, parent, run_dir = fake_sweep(tmp_path)
    # only one temperature's configurations: no matched-temperature section, one row per method
    client = MlflowClient(uri)
    for run in client.search_runs([experiment], filter_string="params.temperature = '0.5'"):
        client.delete_run(run.info.run_id)
    paper = tmp_path / "paper.yaml"
    paper.write_text("fake:\n  simclr: {knn/toy: 30.0, linear/toy: 40.0}\n  moco: {knn/toy: 10.0}\n")
    md, _, _ = write_report(uri, experiment, parent, run_dir, "fake", paper)
    text = md.read_text()
    assert "matched temperature" not in text
    assert "| simclr | knn/toy | 32.0 ± 2.0 | 30.0 | +2.0 |" in text
    assert "| simclr | linear/toy | 37.0 ± 2.0 | 40.0 | -3.0 |" in text
    assert "| moco | knn/toy | not run | 10.0 | – |" in text


def test_report_cli_finds_the_newest_run_and_fails_in_one_line(tmp_path, monkeypatch, capsys):
    uri, experiment, parent, run_dir = fake_sweep(tmp_path)
    sweep = tmp_path / "fake.yaml"
    sweep.write_text(f"name: fake\ndatasets: {{d: {{root: nowhere}}}}\ngrid: {{method: [simclr]}}\nstorage: {tmp_path / 'runs'}\n")
    monkeypatch.chdir(tmp_path)
    assert report_main([str(sweep)]) == 0
    assert "## Paper-style table" in capsys.readouterr().out
    assert (run_dir / "report" / "knn_curves.png").is_file()
    other = tmp_path / "other.yaml"
    other.write_text(f"name: other\ndatasets: {{d: {{root: nowhere}}}}\ngrid: {{method: [simclr]}}\nstorage: {tmp_path / 'runs'}\n")
    assert report_main([str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no run of sweep 'other'" in err and "\n" not in err
