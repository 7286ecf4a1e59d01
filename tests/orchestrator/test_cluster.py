"""Cluster mode: ``--address`` checks, and a real sweep on a simulated 3-node cluster (fake GPUs)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from masking.store import RegionStore
from orchestrator.sweep import main
from tests.orchestrator.sweep_files import TINY_SIMCLR, edit
from tests.orchestrator.test_sweep import SWEEP

ROOT = Path(__file__).resolve().parents[2]


def cluster_sweep(root: Path) -> Path:
    """4 trials (2 methods x 2 seeds) at half a GPU each, 2 masker actors at half a GPU each,
    storage as a file:// URI, tracking on a SQLite file."""
    text = edit(
        SWEEP.format(root=root, epochs=2),
        ("resources: {cpu: 1, max_failures: 1}", "resources: {cpu: 1, gpu: 0.5, mask_actors: 2, mask_gpu: 0.5, mask_batch_size: 4, max_failures: 0}"),
        (f"storage: {root}/runs", f"storage: file://{root}/shared/runs\nseeds: [0, 1]"),
        ("linear_epochs: 2", "linear_epochs: 1"),
    )
    path = root / "cluster.yaml"
    path.write_text(text)
    return path


def test_address_needs_a_tracking_uri_every_node_reaches(tmp_path, capsys):
    sweep = cluster_sweep(tmp_path)
    local = tmp_path / "local.yaml"
    local.write_text("\n".join(line for line in sweep.read_text().splitlines() if not line.startswith("tracking:")))
    assert main([str(local), "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: tracking.uri: --address runs trials on other machines") and "\n" not in err
    assert not (tmp_path / "shared").exists()  # stopped before Ray and before any run folder


def test_unreachable_storage_stops_before_ray_in_one_line(tmp_path, capsys):
    sweep = cluster_sweep(tmp_path)
    s3 = "s3://bucket/runs?region=eu-west-1&endpoint_override=127.0.0.1:9&scheme=http"  # nothing listens on port 9
    sweep.write_text(sweep.read_text().replace(f"storage: file://{tmp_path}/shared/runs", f'storage: "{s3}"'))
    assert main([str(sweep), "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: storage: {s3} is unreachable: ") and "\n" not in err


def run_cluster_script(script: str, sweep: Path, out: Path, tmp_path: Path) -> str:
    """Run ``tests/orchestrator/<script> SWEEP OUT`` (a simulated Ray cluster in a process of its own,
    see its docstring) and return its output; fails the test when it times out or does not write OUT."""
    ray_tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Unix socket paths live under it
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, str(ROOT / "tests" / "orchestrator" / script), str(sweep), str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and the Ray processes it started
        log, _ = proc.communicate()
        pytest.fail(f"{script} timed out:\n" + log[-5000:])
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0 and out.is_file(), log[-5000:]
    return log


@pytest.mark.slow
def test_sweep_on_a_simulated_cluster_spreads_trials_and_masker_actors(tmp_path):
    """Head without GPU + 2 workers x (2 CPUs, 1 fake GPU): 4 trials at gpu 0.5 pack 2 per GPU on
    both workers, the 2 masker actors sit on different nodes, every trial lands in MLflow, and
    --resume finds the run on file:// storage and restores it with Tune."""
    sweep = cluster_sweep(tmp_path)
    out = tmp_path / "cluster.json"
    log = run_cluster_script("simulated_cluster.py", sweep, out, tmp_path)
    nodes = json.loads(out.read_text())
    assert nodes["rc"] == 0 and nodes["resume_rc"] == 0, log[-5000:]
    workers = set(nodes["workers"])
    assert "tracking.uri sqlite:" in log and "warning:" in log  # a SQLite file with --address: warned

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 5 and len(children) == 4  # --resume made no second run of anything
    for run in children:
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "knn_top1/shapes")] == [1, 2]
    trial_nodes = [r.data.tags["node_id"] for r in children]
    assert set(trial_nodes) == workers, "trials should fill both GPU nodes (head has no GPU)"
    assert all(trial_nodes.count(n) == 2 for n in workers)  # two trials per fake GPU

    store_file = next((tmp_path / "shared" / "runs" / "regions").glob("scenes--gt--*.parquet"))
    assert sorted(nodes["masker_actor_nodes"]) == sorted(workers)  # one masker actor per GPU node
    masked = json.loads(RegionStore.load(f"file://{store_file}").metadata["nodes"])
    assert set(masked) <= workers and sum(masked.values()) == 24  # which node masked how many images
    run_dir = Path(nodes["run_dir"].removeprefix("file://"))
    assert nodes["run_dir"].startswith(f"file://{tmp_path}/shared/runs/tiny-")
    assert {"s3same_sweep.json", "sweep.yaml", "summary.md", "summary.csv"} <= {p.name for p in run_dir.iterdir()}
    assert (run_dir / "report" / "report.md").is_file()
    assert len(list(run_dir.glob("*/checkpoint_000001"))) == 4  # Tune checkpoints through the URI storage
    assert "resuming file://" in log


@pytest.mark.slow
def test_a_node_lost_mid_sweep_moves_its_trials_to_the_other_node_from_their_checkpoints(tmp_path):
    """Head without GPU + 2 workers x (2 CPUs, 1 fake GPU), 6 trials of 6 epochs at gpu 0.5 (4 run at
    once, 2 per worker). Once a trial on a worker has a checkpoint, that worker is removed (killed):
    its trials restart on the other worker, from their checkpoints where they had one (MLflow tag
    ``restored_from_epoch``), and no other trial restarts; every trial finishes once, in its own single MLflow run, with every
    epoch logged exactly once."""
    epochs = 6  # a trial still has epochs left when its node goes: at 4 the tiny trials sometimes ended first (CI, 0a92e31)
    sweep = tmp_path / "lost.yaml"
    sweep.write_text(TINY_SIMCLR.format(name="lost", root=tmp_path, scenes=16, epochs=epochs, seeds=list(range(6)),
                                        resources="{cpu: 1, gpu: 0.5, max_failures: 3}", storage=tmp_path / "shared" / "runs"))
    out = tmp_path / "lost.json"
    log = run_cluster_script("lost_node.py", sweep, out, tmp_path)
    report = json.loads(out.read_text())
    assert report["rc"] == 0, log[-5000:]
    assert report.get("removed") in report["workers"], "no worker was removed mid-sweep:\n" + log[-3000:]
    survivor = next(w for w in report["workers"] if w != report["removed"])
    moved = report["running_on_removed"]
    print(f"removed a worker with {moved} on it (checkpointed epochs {report['checkpointed_epochs_at_removal']}); sweep ended {report['ended_at'] - report['removed_at']:.0f} s later")
    assert moved and all(report["checkpointed_epochs_at_removal"][t] < epochs for t in moved)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("lost").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 7 and len(children) == 6  # no run made twice
    assert sorted(r.data.tags["trial_id"] for r in children) == [f"simclr,seed={s}" for s in range(6)]
    restored = {}
    for run in children:
        trial = run.data.tags["trial_id"]
        assert run.info.status == "FINISHED", trial
        for key in ("epoch", "knn_top1/shapes"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, epochs + 1)), (trial, key)
        if "restored_from_epoch" in run.data.tags:
            restored[trial] = int(run.data.tags["restored_from_epoch"])
    print(f"restored from epochs {restored}")
    assert set(restored) <= set(moved)  # no trial of the other worker restarted
    at_removal = report["checkpointed_epochs_at_removal"]
    for trial in moved:
        run = next(r for r in children if r.data.tags["trial_id"] == trial)
        assert run.data.tags["node_id"] == survivor  # finished on the other node
        if at_removal[trial] >= 1:  # (one without a checkpoint yet starts again from scratch)
            assert restored[trial] >= at_removal[trial]  # from its checkpoint, not from scratch
    assert any(at_removal[trial] >= 1 for trial in moved)  # the watcher's condition: one had a checkpoint
