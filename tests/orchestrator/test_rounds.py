"""Rounds: a masker reading a checkpoint of a trial of the same sweep (``checkpoint: "trial:..."``)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from masking.store import RegionStore
from orchestrator import rounds
from orchestrator.config import SweepError, load_sweep
from orchestrator.plan import describe, make_plan
from orchestrator.resume import COPY, trial_identities
from orchestrator.rundirs import STATE_FILE, new_run_dir, write_state
from orchestrator.smoke import smoke_sweep
from orchestrator.sweep import run_sweep
from samdata.storage import location
from tests.orchestrator.sweep_files import edit
from tests.orchestrator.test_sweep import SWEEP as TINY

SWEEP = edit(
    TINY,
    ("name: tiny", "name: rounds"),
    ("experiment: tiny", "experiment: rounds"),
    ("  gt: {{name: ground_truth, min_area: 100}}", '  own: {{name: features, min_area: 100, params: {{checkpoint: "trial:method=simclr", clusters: 3}}}}'),
    ("masker: [gt]", "masker: [own]"),
    ("storage: {root}/runs", "storage: {root}/runs\nseeds: {seeds}"),
)
"""``tests.orchestrator.test_sweep``'s tiny sweep with a features masker reading each seed's SimCLR checkpoint."""


def write(tmp_path: Path, *edits: tuple[str, str], epochs: int = 2, seeds: str = "[0, 1]") -> Path:
    path = tmp_path / "rounds.yaml"
    path.write_text(edit(SWEEP.format(root=tmp_path, epochs=epochs, seeds=seeds), *edits))
    return path


def test_each_seeds_region_trial_takes_the_same_seeds_checkpoint_in_round_two(tmp_path):
    plan = make_plan(load_sweep(write(tmp_path)), tmp_path)
    after = {t.key: t.after for t in plan.trials}
    assert after == {"simclr,seed=0": None, "simclr,seed=1": None, "samclr,seed=0": "simclr,seed=0", "samclr,seed=1": "simclr,seed=1"}
    assert [[t.key for t in r] for r in rounds.by_round(plan.trials)] == [["simclr,seed=0", "simclr,seed=1"], ["samclr,seed=0", "samclr,seed=1"]]
    assert sorted(j.after for j in plan.mask_jobs) == ["simclr,seed=0", "simclr,seed=1"]
    assert len({str(j.store) for j in plan.mask_jobs}) == 2  # one store per source checkpoint
    for job in plan.mask_jobs:
        assert job.config.params["checkpoint"] == "trial:" + job.after
        assert [t.key for t in plan.trials if t.store == job.store] == ["samclr," + job.after.split(",")[1]]
    text = describe(plan)
    assert "from the last checkpoint of trial simclr,seed=0 (round 2)" in text
    assert "trial samclr,seed=1: samclr" in text and "round=2" in text


def test_a_selector_can_name_the_seed_and_a_chain_makes_three_rounds(tmp_path):
    sweep = write(
        tmp_path,
        ('own: {name: features, min_area: 100, params: {checkpoint: "trial:method=simclr", clusters: 3}}',
         'own: {name: features, min_area: 100, params: {checkpoint: "trial:method=simclr,seed=0", clusters: 3}}\n'
         '  again: {name: features, min_area: 100, params: {checkpoint: "trial:masker=own", clusters: 3}}'),
        ("masker: [own]", "masker: [own, again]"),
    )
    plan = make_plan(load_sweep(sweep), tmp_path)
    after = {t.key: t.after for t in plan.trials}
    assert after["samclr,masker=own,seed=1"] == "simclr,seed=0"  # the selector's seed, not the trial's
    assert after["samclr,masker=again,seed=1"] == "samclr,masker=own,seed=1"
    numbers = rounds.round_numbers(plan.trials)
    assert numbers["simclr,seed=0"] == 1 and numbers["samclr,masker=own,seed=0"] == 2 and numbers["samclr,masker=again,seed=0"] == 3
    # the two seeds' own-masker trials read one checkpoint: one store
    assert len([j for j in plan.mask_jobs if j.masker == "own"]) == 1


@pytest.mark.parametrize(
    "checkpoint, expected",
    [
        ("trial:method=byol", "maskers.own.params.checkpoint: 'trial:method=byol' matches no trial with seed=0, dataset=scenes, method=byol"),
        ("trial:method=samclr", "selects trial samclr,seed=0 itself"),
        ("trial:sampling=random,colour=red", "names unknown setting(s) colour; known: "),
        ("trial:simclr", "'trial:simclr' is not a trial selector; write trial:KEY=VALUE"),
        ("trial:sampling=random", "matches 2 trials with seed=0, dataset=scenes, sampling=random (simclr,temperature=0.2,seed=0, simclr,temperature=0.5,seed=0); name more settings"),
    ],
)
def test_bad_trial_selectors_fail_at_plan_time_naming_the_masker(tmp_path, checkpoint, expected):
    edits = [('checkpoint: "trial:method=simclr"', f'checkpoint: "{checkpoint}"')]
    if "matches 2" in expected:
        edits.append(("  epochs: [2]", "  epochs: [2]\n  temperature: [0.2, 0.5]"))
    with pytest.raises(SweepError) as err:
        make_plan(load_sweep(write(tmp_path, *edits)), tmp_path)
    assert expected in str(err.value)


def test_trials_whose_regions_come_from_each_other_are_a_cycle(tmp_path):
    sweep = write(
        tmp_path,
        ('own: {name: features, min_area: 100, params: {checkpoint: "trial:method=simclr", clusters: 3}}',
         'a: {name: features, params: {checkpoint: "trial:masker=b"}}\n  b: {name: features, params: {checkpoint: "trial:masker=a"}}'),
        ("method: [simclr, samclr]", "method: [samclr]"),
        ("masker: [own]", "masker: [a, b]"),
    )
    with pytest.raises(SweepError, match=r"trial checkpoints form a cycle: samclr,masker=a,seed=0 -> samclr,masker=b,seed=0 -> samclr,masker=a,seed=0"):
        make_plan(load_sweep(sweep), tmp_path)


def test_a_round_store_is_named_by_the_checkpoints_content_and_its_masker_reads_the_file(tmp_path):
    plan = make_plan(load_sweep(write(tmp_path)), tmp_path)
    job = plan.mask_jobs[0]
    first, same, other = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    first.write_bytes(b"weights")
    same.write_bytes(b"weights")
    other.write_bytes(b"other weights")
    bound = [rounds.bind(job, location(f), plan.datasets, plan.regions_dir) for f in (first, same, other)]
    assert bound[0].config.params["checkpoint"] == str(first)  # what the actors load
    assert bound[0].store == bound[1].store  # the same weights at another path: the same regions
    assert bound[2].store != bound[0].store and bound[0].store != job.store
    assert bound[0].store.parent == plan.regions_dir and bound[0].store.name.startswith("scenes--own--")


def test_a_later_round_waits_for_a_source_that_has_not_reached_its_last_epoch(tmp_path):
    plan = make_plan(load_sweep(write(tmp_path, epochs=3)), tmp_path)
    second = rounds.by_round(plan.trials)[1]
    folder = location(tmp_path / "runs" / "x" / "checkpoint_000002")
    histories = {  # run id -> the newest checkpoint's history.json, as checkpointed_histories gives it
        "run-simclr,seed=0": {"epochs": 3, "history": [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}], "checkpoint": folder},
        "run-simclr,seed=1": {"epochs": 3, "history": [{"epoch": 1}, {"epoch": 2}], "checkpoint": folder},
    }
    checkpoints, waiting = rounds.source_checkpoints(second, histories, lambda key: f"run-{key}")
    assert checkpoints == {"simclr,seed=0": folder / "state.pt"} and waiting == ["simclr,seed=1"]
    del histories["run-simclr,seed=1"]  # no checkpoint at all (the trial failed before its first epoch)
    assert rounds.source_checkpoints(second, histories, lambda key: f"run-{key}")[1] == ["simclr,seed=1"]


@pytest.mark.slow
def test_round_two_trains_on_round_ones_checkpoint_and_a_killed_driver_resumes_across_rounds(tmp_path):
    """The sweep trains SimCLR (round 1), computes regions from its last checkpoint with Ray Data and
    trains SAMCLR on them (round 2). The driver is killed in round 2; ``--resume`` finishes round 2
    without retraining round 1 or recomputing its store, with every epoch in MLflow once."""
    epochs = 5
    sweep = write(tmp_path, epochs=epochs, seeds="[0]")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "orchestrator.sweep", str(sweep)]
    with open(tmp_path / "first.log", "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not list((tmp_path / "runs").glob("rounds-*/round-2/*/checkpoint_000001")):
            time.sleep(0.3)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = (tmp_path / "first.log").read_text()
    assert "round 2: 1 trial(s) on regions from the checkpoints of simclr" in first, first[-3000:]
    run_dir = next((tmp_path / "runs").glob("rounds-*"))
    assert not json.loads((run_dir / STATE_FILE).read_text()).get("finished")
    round_one = sorted(run_dir.glob("*/checkpoint_*/state.pt"))  # round 1's trial folders sit in the run folder
    assert round_one and all(f"checkpoint_{epochs - 1:06d}" in str(f) or f"checkpoint_{epochs - 2:06d}" in str(f) for f in round_one)
    before = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in round_one}
    stores = sorted((tmp_path / "runs" / "regions").glob("scenes--own--*.parquet"))
    assert len(stores) == 1  # content-named; the plan's trial-named placeholder is never written
    masker = json.loads(RegionStore.load(location(stores[0])).metadata["masker"])
    assert masker["name"] == "features" and masker["params"]["checkpoint"] == str(round_one[-1])  # the newest checkpoint

    done = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"reusing {stores[0]}" in done.stdout, done.stdout[-3000:]
    assert {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(run_dir.glob("*/checkpoint_*/state.pt"))} == before
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("rounds").experiment_id])
    children = {r.data.tags["trial_id"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == ["samclr", "simclr"]
    for run in children.values():
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(1, epochs + 1))
    assert children["samclr"].data.tags[rounds.TAG] == "simclr" and rounds.TAG not in children["simclr"].data.tags
    assert children["samclr"].data.params["masker"] == "own"
    assert list((run_dir / "round-2").glob("*/checkpoint_*/state.pt"))
    purity = {tuple(row["trials"]): row for row in json.loads((run_dir / "purity.json").read_text())}
    assert purity[("samclr",)]["masker"] == "own" and 0 <= purity[("samclr",)]["same_object"] <= 1
    assert ("simclr",) in purity
    assert "| samclr" in (run_dir / "summary.md").read_text()


def test_allow_changes_refuses_to_add_a_later_round_before_ray_starts(tmp_path):
    old = write(tmp_path, ("method: [simclr, samclr]", "method: [simclr]"), seeds="[0]")
    run_dir = new_run_dir(make_plan(load_sweep(old), tmp_path).storage, "rounds")
    write_state(run_dir, {"trials": trial_identities(make_plan(load_sweep(old), tmp_path))})
    (run_dir / COPY).write_bytes(old.read_bytes())
    new = write(tmp_path, seeds="[0]")
    with pytest.raises(SweepError, match=r"--resume --allow-changes: trial\(s\) samclr would be added to a later round"):
        run_sweep(str(new), resume=True, allow_changes=True, log=lambda line: None)
    assert not (tmp_path / "mlflow.db").exists()  # refused before the tracking store was opened, which comes before Ray


def test_smoke_keeps_every_maskers_parameters_but_hqsams_sizes(tmp_path):
    """``--smoke`` once dropped every masker's parameters: a features masker lost its checkpoint
    (a TypeError inside a Ray actor) and a filtered Felzenszwalb ran unfiltered."""
    sweep = write(
        tmp_path,
        ('own: {name: features, min_area: 100, params: {checkpoint: "trial:method=simclr", clusters: 3}}',
         'own: {name: features, min_area: 100, params: {checkpoint: "trial:method=simclr", clusters: 3}}\n'
         '  pure: {name: felzenszwalb, keep_masks: true, params: {min_score: 0.7}}\n'
         '  sam: {name: hqsam, params: {model_type: vit_h, points_per_side: 32}}\n'
         '  gt: {name: ground_truth, params: {masks_root: /real/masks, ignore_ids: [7]}}'),
    )
    smoke = smoke_sweep(load_sweep(sweep))
    assert smoke.maskers["own"].params == {"checkpoint": "trial:method=simclr", "clusters": 3}
    assert smoke.maskers["pure"].params == {"min_score": 0.7} and smoke.maskers["pure"].keep_masks
    assert smoke.maskers["gt"].params == {"ignore_ids": [7]}  # the plan points it at the smoke scenes' masks
    assert smoke.maskers["sam"].params["model_type"] == "vit_tiny" and smoke.maskers["sam"].params["points_per_side"] == 2
    plan = make_plan(smoke, tmp_path)
    assert [t.after for t in plan.trials if t.masker == "own"] == ["simclr"]  # smoke keeps one seed: the keys lose it
