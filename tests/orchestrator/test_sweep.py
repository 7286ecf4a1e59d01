"""A real small sweep on Ray with a real MLflow database, read back."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from orchestrator.rundirs import STATE_FILE
from orchestrator.sweep import main, ray_init_kwargs, run_sweep
from tests.conftest import UNREADABLE, write_odd_images

SWEEP = """\
name: tiny
datasets:
  scenes:
    root: {root}/data
    synthetic: {{scenes: 24, scene_size: 64, object_size: [20, 30], objects_per_scene: [2, 3], eval_size: 32,
                num_classes: 4, eval_train_per_class: 6, eval_val_per_class: 3, clutter: 10}}
maskers:
  gt: {{name: ground_truth, min_area: 100}}
grid:
  method: [simclr, samclr]
  masker: [gt]
  epochs: [{epochs}]
train: {{batch_size: 8, image_size: 32, backbone_width: 8, stem: cifar, workers: 0}}
eval:
  every: 1
  knn_k: 10
  linear_epochs: 2
  sets:
    shapes: {{dataset: scenes}}
resources: {{cpu: 1, max_failures: 1}}
tracking: {{uri: "sqlite:///{root}/mlflow.db", experiment: tiny}}
storage: {root}/runs
"""


def write_sweep(root: Path, epochs: int = 3, gpu_input: bool = False) -> Path:
    """``SWEEP`` as ``root/tiny.yaml``; ``gpu_input``: its trials take ``input: gpu`` (on this CPU too),
    so they share one image cache in Ray's object store (``orchestrator.shared_caches``)."""
    path = root / "tiny.yaml"
    text = SWEEP.format(root=root, epochs=epochs)
    path.write_text(text.replace("workers: 0}", "workers: 0, input: gpu}") if gpu_input else text)
    return path


def runs_of(root: Path):
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.mark.slow
def test_sweep_runs_on_ray_and_lands_in_mlflow(ray_session, tmp_path):
    sweep = write_sweep(tmp_path)
    lines = []
    assert run_sweep(str(sweep), log=lines.append) == 0
    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["trial_id"] for r in children) == ["samclr", "simclr"]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        for key in ("train/loss", "knn_top1/shapes"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], key
        assert [m.step for m in client.get_metric_history(run.info.run_id, "linear_top1/shapes")] == [3]
        assert 0 <= run.data.metrics["linear_top1/shapes"] <= 1
        assert run.data.metrics["images_per_s"] > 0
    samclr = next(r for r in children if r.data.tags["trial_id"] == "samclr")
    assert samclr.data.params["sampling"] == "regions" and samclr.data.params["masker"] == "gt"
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"summary.md", "summary.csv", "sweep.yaml", "report", "purity.json"} <= artifacts
    # view-pair purity of both arms, measured after the region stage, in the report beside each row
    assert parents[0].data.metrics["purity/scenes/gt/c_1.3/same_object"] > parents[0].data.metrics["purity/scenes/whole_image/c_-/same_object"]
    assert any(line.startswith("purity scenes/gt c=1.3") for line in lines)
    report = {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert report == {"report/report.md", "report/results.csv", "report/knn_curves.png"}
    table = "\n".join(lines)
    assert "| simclr |" in table and "knn_top1/shapes" in table and "/#/experiments/" in table
    assert "--host 127.0.0.1" in table  # the printed MLflow UI command serves loopback only
    # the region store is reused by the next sweep, and --resume of a finished sweep reruns nothing
    assert run_sweep(str(sweep), resume=True, log=lines.append) == 0
    assert any("reusing" in line for line in lines) and any("already finished" in line for line in lines)
    _, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and len(children) == 2


def test_dry_run_plans_without_ray_or_mlflow(tmp_path, capsys):
    assert main([str(write_sweep(tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 trials, 1 region jobs" in out and "trial samclr" in out and "(compute)" in out
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()


def test_bad_sweep_file_exits_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(write_sweep(tmp_path).read_text().replace("epochs: [3]", "epochs: [0]"))
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}:") and "grid.epochs.0" in err and "\n" not in err


@pytest.mark.slow
def test_killed_driver_resumes_with_one_run_per_trial_and_rebuilds_the_shared_image_cache(tmp_path):
    """SIGKILL the driver mid-sweep; --resume finishes the rest; MLflow has no duplicates. The trials
    take ``input: gpu``, so they share an image cache in Ray's object store: the cache dies with the
    killed driver's Ray, --resume builds it again and the restored trials read it from the object
    store (one sweep for both checks; a killed ``input: cpu`` sweep: test_ctrl_c_* below and
    tests/orchestrator/test_resume.py; the cache's other tests: tests/orchestrator/test_shared_caches.py)."""
    from orchestrator.trial import IMAGE_CACHE_TAG

    sweep = write_sweep(tmp_path, epochs=6, gpu_input=True)
    proc, cmd, env = start_sweep_and_wait_for_a_checkpoint(tmp_path, 6, sweep, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    proc.wait()
    _, _, before = runs_of(tmp_path)
    assert {r.data.tags.get(IMAGE_CACHE_TAG) for r in before} <= {"shared", None}
    assert_resume_finishes_each_epoch_once(tmp_path, cmd, env, epochs=6)
    _, _, children = runs_of(tmp_path)
    assert any("restored_from_epoch" in r.data.tags for r in children)  # at least the trial killed after its checkpoint
    assert all(r.data.tags[IMAGE_CACHE_TAG] == "shared" for r in children)


def start_sweep_and_wait_for_a_checkpoint(tmp_path: Path, epochs: int, sweep: Path | None = None, **popen):
    sweep = sweep or write_sweep(tmp_path, epochs=epochs)
    repo = Path(__file__).resolve().parents[2]  # this checkout, whatever is installed
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "orchestrator.sweep", str(sweep)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True, **popen)
    deadline = time.time() + 240
    while time.time() < deadline and not list((tmp_path / "runs").glob("tiny-*/*/checkpoint_000001")):
        time.sleep(0.5)
    assert list((tmp_path / "runs").glob("tiny-*/*/checkpoint_000001")), "no checkpoint appeared"
    return proc, cmd, env


def assert_resume_finishes_each_epoch_once(tmp_path: Path, cmd: list[str], env: dict, epochs: int) -> None:
    """The stopped sweep is not marked finished; --resume finishes it with one MLflow run per
    trial and every epoch logged once."""
    state = json.loads(next((tmp_path / "runs").glob(f"tiny-*/{STATE_FILE}")).read_text())
    assert not state.get("finished")
    done = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["trial_id"] for r in children) == ["samclr", "simclr"]
    for run in children:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert steps == list(range(1, epochs + 1))
        assert [m.step for m in client.get_metric_history(run.info.run_id, "knn_top1/shapes")] == steps


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_that_resume_finishes(tmp_path):
    """SIGINT to the driver mid-sweep (what Ctrl+C sends): Tune stops gracefully and calls the
    trials it stopped TERMINATED, but the sweep says they did not finish, exits 1 and --resume
    trains them to the end."""
    with open(tmp_path / "sweep.log", "w") as log:  # a file, not a pipe: Tune's output would fill a pipe
        proc, cmd, env = start_sweep_and_wait_for_a_checkpoint(tmp_path, 6, stdout=log, stderr=subprocess.STDOUT)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
    out = (tmp_path / "sweep.log").read_text()
    assert proc.returncode == 1, out[-3000:]
    assert "trial(s) not finished; continue with --resume" in out, out[-3000:]
    assert_resume_finishes_each_epoch_once(tmp_path, cmd, env, epochs=6)


@pytest.mark.slow
def test_every_method_with_both_samplings_lands_in_mlflow(ray_session, tmp_path):
    """method x sampling are independent axes: every method runs with random and region views."""
    from selfsup.methods import TRAINED as METHODS  # frozen encoders: tests/orchestrator/test_frozen_sweep.py

    text = SWEEP.format(root=tmp_path, epochs=1).replace(
        "  method: [simclr, samclr]", f"  method: [{', '.join(METHODS)}]\n  sampling: [random, regions]"
    ).replace("linear_epochs: 2", "linear_epochs: 1")
    sweep = tmp_path / "zoo.yaml"
    sweep.write_text(text)
    assert run_sweep(str(sweep), log=lambda _: None) == 0
    client, parents, children = runs_of(tmp_path)
    assert len(children) == 2 * len(METHODS)
    seen = {(r.data.params["method"], r.data.params["sampling"]) for r in children}
    assert seen == {(m, s) for m in METHODS for s in ("random", "regions")}
    for run in children:
        assert run.info.status == "FINISHED"
        for key in ("train/loss", "knn_top1/shapes", "linear_top1/shapes"):
            assert math.isfinite(run.data.metrics[key]), (run.data.tags["trial_id"], key)


def test_unreachable_tracking_server_stops_before_training(tmp_path, capsys):
    text = SWEEP.format(root=tmp_path, epochs=1).replace(f'uri: "sqlite:///{tmp_path}/mlflow.db"', 'uri: "http://127.0.0.1:9"')
    sweep = tmp_path / "offline.yaml"
    sweep.write_text(text)
    assert main([str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MLflow tracking at http://127.0.0.1:9 is unreachable")
    assert not (tmp_path / "runs").exists()  # nothing started: no regions, no trials


BAD_FOLDER_SWEEP = """\
name: odd
datasets:
  photos: {{root: {photos}}}
maskers:
  fz: {{name: felzenszwalb, min_area: 20}}
grid:
  method: [simclr, samclr]
  masker: [fz]
train: {{batch_size: 8, image_size: 32, backbone_width: 8, stem: cifar, workers: 0, epochs: 1}}
eval: {{every: 1, knn_k: 10, linear_epochs: 1, sets: {{shapes: {{root: {eval}}}}}}}
resources: {{cpu: 1}}
tracking: {{uri: "sqlite:///{root}/mlflow.db", experiment: odd}}
storage: {root}/runs
"""


@pytest.mark.slow
def test_unreadable_images_are_counted_and_named_never_fatal(ray_session, synthetic, tmp_path):
    """A photo folder with odd and broken files: the sweep trains on every readable one and its
    summary and MLflow parent run count and name the unreadable ones."""
    photos = tmp_path / "photos"
    shutil.copytree(synthetic.images, photos)
    write_odd_images(photos / "odd")
    sweep = tmp_path / "odd.yaml"
    sweep.write_text(BAD_FOLDER_SWEEP.format(photos=photos, eval=synthetic.eval, root=tmp_path))
    lines = []
    assert run_sweep(str(sweep), log=lines.append) == 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("odd").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)
    assert parent.data.metrics["skipped_images"] == len(UNREADABLE)
    for name in UNREADABLE:
        assert f"photos/odd/{name} (" in parent.data.tags["skipped_images"]
    summary = next((tmp_path / "runs").glob("odd-*/summary.md")).read_text()
    assert f"skipped_images: {len(UNREADABLE)} unreadable pretraining images were left out" in summary
    assert all(f"odd/{name} (" in summary for name in UNREADABLE)
    assert f"skipped_images: {len(UNREADABLE)}" in "\n".join(lines)
    assert len(list((tmp_path / "runs" / "regions").glob("photos--unreadable--*.json"))) == 1


def test_nothing_listens_beyond_loopback_by_our_choice():
    """The local Ray has no dashboard (and would bind it to 127.0.0.1); every MLflow UI command the
    sweep prints or the README gives binds to 127.0.0.1."""
    local = ray_init_kwargs(None)
    assert local["include_dashboard"] is False and local["dashboard_host"] == "127.0.0.1"
    joined = ray_init_kwargs("10.0.0.1:6379")  # a cluster keeps its own settings; our packages travel with the job
    assert joined["address"] == "10.0.0.1:6379" and set(joined) == {"address", "runtime_env"}
    repo = Path(__file__).resolve().parents[2]
    sources = [repo / "README.md", *sorted((repo / "orchestrator").glob("*.py"))]
    commands = [line for f in sources for line in f.read_text().splitlines() if re.search(r"mlflow (ui|server)\b", line)]
    # loopback, or (a cluster's tracking server) an address the user names; never every interface
    assert commands and all("--host 127.0.0.1" in line or "--host HEAD_PRIVATE_IP" in line for line in commands), commands
    assert not any("0.0.0.0" in line or "--host ::" in line for line in commands), commands


@pytest.mark.slow
def test_local_ray_starts_without_a_dashboard(tmp_path):
    """A real local Ray started the way the sweep starts it: no dashboard URL."""
    script = "from orchestrator.sweep import _init_ray; context = _init_ray(None); print('DASHBOARD', repr(context.dashboard_url))"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert "DASHBOARD ''" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
