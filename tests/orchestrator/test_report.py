"""The report: numbers read back from a real MLflow database, aggregated the way a paper shows them."""

import csv
import io
import math

import pytest
from mlflow import MlflowClient

from orchestrator.report import collect, configurations
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
T_975_2 = 4.302653  # Student's t, 97.5 % quantile, 2 degrees of freedom (3 seeds)


def fake_sweep(tmp_path, epochs=4, arms=None, sets=("toy",), name="fake", seeds=3):
    """Parent and child runs made by the tracking code a sweep uses, with known curves: per arm
    (settings -> final KNN of seeds 0, 1, 2) KNN rising linearly from 0 to its final value, the untrained
    network at epoch 0 (``UNTRAINED``, linear 10 points above), a linear probe at the end 5 points
    above KNN (last epoch) and 8 points above (best epoch), the same on every eval set in ``sets``."""
    arms = arms or {
        (("method", m), ("sampling", s), ("masker", k), ("c", c), ("temperature", tau)): finals
        for (m, s, k, c, tau), finals in FINAL_KNN.items()
    }
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = open_experiment(uri, name)
    parent = start_sweep(uri, experiment, f"{name}-1", {})
    for setting, finals in arms.items():
        for seed, final in list(enumerate(finals))[:seeds]:
            params = {**dict(setting), "seed": seed, "epochs": epochs, "workers": 0}
            run = child_run(uri, experiment, parent, f"{'-'.join(str(v) for _, v in setting)}-{seed}", params)
            tracker = TrialTracker(uri, run)
            tracker.log_epoch({"epoch": 0, **{f"knn_top1/{s}": UNTRAINED[seed] for s in sets}, **{f"linear_top1/{s}": UNTRAINED[seed] + 0.1 for s in sets}})
            for epoch in range(1, epochs + 1):
                metrics = {"epoch": epoch, "train/loss": 5.0 - epoch, **{f"knn_top1/{s}": final * epoch / epochs for s in sets}}
                if epoch == epochs:
                    metrics.update({f"linear_top1/{s}": final + 0.05 for s in sets})
                    metrics.update({f"linear_best_top1/{s}": final + 0.08 for s in sets})
                tracker.log_epoch(metrics)
            tracker.finish()
    run_dir = tmp_path / "runs" / f"{name}-20261130-000000"  # a run-folder name as new_run_dir makes them
    run_dir.mkdir(parents=True)
    write_state(run_dir, {"sweep": name, "experiment_id": experiment, "tracking_uri": uri, "parent_run_id": parent})
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
    header = row(text, "configuration")
    assert header[2:] == [
        "KNN toy",
        "KNN toy, gain over the untrained network",
        "linear toy",
        "linear toy, gain over the untrained network",
        "linear toy, best epoch (selected on the validation split)",
    ]

    # paper-style rows: mean ± sample std over the three seeds, in %: 50, 52, 57 -> 53.0 ± sqrt(13)
    samclr = row(text, "samclr sampling=regions masker=gt c=1.3 τ=0.07")
    assert samclr[1] == "3" and samclr[2] == "53.0 ± 3.6" and samclr[4] == "58.0 ± 3.6" and samclr[6] == "61.0 ± 3.6"
    # gain over the untrained network, paired by seed: 50-15, 52-17, 57-16 = 35, 35, 41 points,
    # mean 37, sample std sqrt(12), interval 37 ± t(0.975, 2) x sqrt(12) / sqrt(3)
    half = T_975_2 * math.sqrt(12) / math.sqrt(3)
    assert samclr[3] == f"+37.0 [{37 - half:+.1f}, {37 + half:+.1f}], n = 3" == "+37.0 [+28.4, +45.6], n = 3"
    # linear: (55, 57, 62) - (25, 27, 26) = 30, 30, 36: the same spread
    assert samclr[5] == "+32.0 [+23.4, +40.6], n = 3"
    assert row(text, "simclr sampling=random τ=0.5")[2] == "22.0 ± 2.0"
    assert row(text, "untrained network (epoch 0)")[2:] == ["16.0 ± 1.0", "", "26.0 ± 1.0", "", ""]
    assert "mean ± sample std over seeds" in text

    # matched temperature: region views minus whole-image views at the same tau, paired by seed:
    # 50-30, 52-32, 57-34 = 20, 20, 23: mean 21, sample std sqrt(3), interval 21 ± t x sqrt(3) / sqrt(3)
    matched = [r for r in text.splitlines() if r.startswith("| matched τ |")]
    assert len(matched) == 2
    at_007 = row(text, "matched τ")
    assert at_007[1].endswith("τ=0.07") and at_007[2] == "simclr sampling=random τ=0.07"
    assert at_007[3] == f"+21.0 [{21 - T_975_2:+.1f}, {21 + T_975_2:+.1f}], n = 3" == "+21.0 [+16.7, +25.3], n = 3"
    # the paper's pairing: 50-20, 52-22, 57-24 = 30, 30, 33
    pairing = row(text, "paper's pairing")
    assert pairing[2] == "simclr sampling=random τ=0.5" and pairing[3] == "+31.0 [+26.7, +35.3], n = 3"
    assert "paired by seed" in text and "standard error" not in text

    # the paper's column: a number, its difference, and n/a where the paper has none
    assert "| simclr | knn/toy | several configurations | – | 21.0 | – |" in text
    assert "| samclr | knn/toy | several configurations | – | n/a | – |" in text

    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    by = {(r["configuration"], r["metric"]): r for r in rows}
    knn = by[("simclr sampling=random τ=0.07", "knn")]
    assert float(knn["mean"]) == pytest.approx(0.32) and float(knn["std"]) == pytest.approx(0.02) and knn["seeds"] == "3"
    assert float(knn["gain"]) == pytest.approx(0.16) and knn["gain_seeds"] == "3"  # 30-15, 32-17, 34-16
    assert float(by[("simclr sampling=random τ=0.07", "linear_best")]["mean"]) == pytest.approx(0.40)
    png = figure.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    client = MlflowClient(uri)
    logged = {a.path for a in client.list_artifacts(parent, "report")}
    assert logged == {"report/report.md", "report/results.csv", "report/knn_curves.png"}


def test_curve_bands_use_the_tables_sample_std(tmp_path):
    uri, experiment, parent, _ = fake_sweep(tmp_path)
    configs = configurations(collect(uri, experiment, parent))
    samclr = next(c for c in configs if c.label == "samclr sampling=regions masker=gt c=1.3 τ=0.07")
    epochs, mean, std = samclr.curve("toy")
    assert list(epochs) == [0, 1, 2, 3, 4]
    # epoch 2: half the finals, 25, 26, 28.5 points: sample std sqrt(13) / 2 (the population std is sqrt(26/3) / 2)
    assert 100 * std[2] == pytest.approx(math.sqrt(13) / 2, abs=1e-6)
    assert std[4] == pytest.approx(samclr.stat("knn", "toy").std)


def test_one_seed_has_no_spread_and_says_so(tmp_path):
    uri, experiment, parent, run_dir = fake_sweep(tmp_path, seeds=1)
    md, table, _ = write_report(uri, experiment, parent, run_dir, "fake", tmp_path / "none.yaml")
    text = md.read_text()
    assert "one seed per configuration: single runs, so no ± and no interval" in text
    assert "±" not in "\n".join(line for line in text.splitlines() if line.startswith("|"))
    samclr = row(text, "samclr sampling=regions masker=gt c=1.3 τ=0.07")
    assert samclr[2:4] == ["50.0", "+35.0, n = 1"]  # 50 - 15, seed 0 alone
    assert row(text, "matched τ")[3] == "+20.0, n = 1"
    assert row(text, "untrained network (epoch 0)")[2] == "15.0"
    knn = next(r for r in csv.DictReader(io.StringIO(table.read_text())) if r["metric"] == "knn")
    assert knn["std"] == "" and knn["gain_low"] == "" and knn["seeds"] == "1"


def test_paper_numbers_beside_a_single_configuration(tmp_path):
    uri, experiment, parent, run_dir = fake_sweep(tmp_path)
    # only one temperature's configurations: region views against SimCLR at that temperature (no paper's
    # pairing), one row per method beside the paper
    client = MlflowClient(uri)
    for run in client.search_runs([experiment], filter_string="params.temperature = '0.5'"):
        client.delete_run(run.info.run_id)
    paper = tmp_path / "paper.yaml"
    paper.write_text("fake:\n  simclr: {knn/toy: 30.0, linear/toy: 40.0}\n  moco: {knn/toy: 10.0}\n")
    md, _, _ = write_report(uri, experiment, parent, run_dir, "fake", paper)
    text = md.read_text()
    assert [r[:3] for r in (row(text, "matched τ"),)] == [["matched τ", "samclr sampling=regions masker=gt c=1.3", "simclr sampling=random"]]
    assert "| paper's pairing |" not in text
    assert "| simclr | knn/toy | 32.0 ± 2.0 | – | 30.0 | +2.0 |" in text
    assert "| simclr | linear/toy | 37.0 ± 2.0 | 40.0 ± 2.0 | 40.0 | -3.0 |" in text
    assert "| moco | knn/toy | not run | – | 10.0 | – |" in text


TABLE1_SETS = ("cifar10", "imagenette", "stl10")


def test_table1_report_puts_the_papers_numbers_beside_ours(tmp_path):
    # the four methods of Table 1, one configuration each, from the real paper_results.yaml
    arms = {
        (("method", "moco"),): (0.40, 0.42, 0.44),
        (("method", "dino"),): (0.35, 0.36, 0.37),
        (("method", "simclr"),): (0.45, 0.47, 0.49),
        (("method", "samclr"),): (0.60, 0.61, 0.65),
    }
    uri, experiment, parent, run_dir = fake_sweep(tmp_path, arms=arms, sets=TABLE1_SETS, name="table1")
    md, _, _ = write_report(uri, experiment, parent, run_dir, "table1")
    text = md.read_text()
    assert "| samclr | knn/cifar10 | 62.0 ± 2.6 | – | 63.9 | -1.9 |" in text
    # linear: last epoch 65.0 ± 2.6 (finals + 5), best epoch 68.0 ± 2.6 (finals + 8), paper 67.5
    assert "| samclr | linear/imagenette | 67.0 ± 2.6 | 70.0 ± 2.6 | 67.5 | -0.5 |" in text
    assert "| simclr | linear/cifar10 | 52.0 ± 2.0 | 55.0 ± 2.0 | 42.5 | +9.5 |" in text
    # SAMCLR over SimCLR: ours paired by seed (60-45, 61-47, 65-49 = 15, 14, 16), the paper's 63.4 - 42.5
    gain = row(text, "linear/cifar10")
    assert gain[1] == f"+15.0 [{15 - T_975_2 / math.sqrt(3):+.1f}, {15 + T_975_2 / math.sqrt(3):+.1f}], n = 3"
    assert gain[2] == "+20.9" and "21.9" in gain[3]
    assert row(text, "knn/cifar10")[2] == "+13.4" and row(text, "knn/cifar10")[3] == ""


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


def test_a_masker_setting_axis_still_finds_the_whole_image_twin(tmp_path):
    """Region configurations over ``maskers.gt.min_area`` (a grid axis SimCLR ignores, so its trials
    have no such param) are each compared with the one SimCLR configuration, paired by seed."""
    arms = {
        (("method", "simclr"), ("sampling", "random"), ("masker", "-"), ("c", "-"), ("temperature", 0.5)): (0.20, 0.22, 0.24),
        (("method", "samclr"), ("sampling", "regions"), ("masker", "gt"), ("c", 1.3), ("temperature", 0.5), ("maskers.gt.min_area", 100)): (0.40, 0.41, 0.45),
        (("method", "samclr"), ("sampling", "regions"), ("masker", "gt"), ("c", 1.3), ("temperature", 0.5), ("maskers.gt.min_area", 400)): (0.30, 0.32, 0.34),
    }
    uri, experiment, parent, run_dir = fake_sweep(tmp_path, arms=arms)
    md, _, _ = write_report(uri, experiment, parent, run_dir, "fake", tmp_path / "none.yaml")
    deltas = [r for r in md.read_text().splitlines() if r.startswith("| matched τ |")]
    assert len(deltas) == 2 and all("simclr sampling=random" in r for r in deltas)
    assert any("+20.0 [" in r for r in deltas) and any("+10.0 [" in r for r in deltas)  # 40-20, 41-22, 45-24; 30-20, ...
