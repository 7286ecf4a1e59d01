"""``input: gpu`` trials share one image cache per node through Ray's object store."""

import os
import signal
import subprocess

import pytest

from orchestrator.config import load_sweep
from orchestrator.plan import make_plan
from orchestrator.shared_caches import cache_key, planned_caches
from orchestrator.sweep import _trial_spec, run_sweep
from orchestrator.trial import IMAGE_CACHE_TAG
from selfsup.config import TrainConfig
from tests.orchestrator.test_sweep import (
    assert_resume_finishes_each_epoch_once,
    runs_of,
    start_sweep_and_wait_for_a_checkpoint,
    write_sweep,
)


def gpu_input_sweep(root, epochs: int = 3):
    sweep = write_sweep(root, epochs)
    sweep.write_text(sweep.read_text().replace("workers: 0}", "workers: 0, input: gpu}"))
    return sweep


def test_one_cache_per_image_list_and_short_side_found_again_by_each_trial(tmp_path):
    plan = make_plan(load_sweep(gpu_input_sweep(tmp_path)))
    lists = {name: (f"{name}.json", f"sha-{name}") for name in plan.datasets}
    planned = planned_caches(plan, lists)
    assert len(planned) == 1  # simclr and samclr: same images, same 48 px short side (1.5 x 32)
    (key, cache), = planned.items()
    assert sorted(cache.trials) == ["samclr", "simclr"] and cache.short_side == 48
    for trial in plan.trials:  # the key a trial computes on its worker from its spec is the driver's
        spec = _trial_spec(plan, trial, "sqlite:///x.db", "run", lists)
        assert cache_key(spec["images"], spec["image_list_sha256"], TrainConfig(**spec["train"])) == key


def test_no_cache_is_planned_for_cpu_input_and_another_short_side_is_another_cache(tmp_path):
    plan = make_plan(load_sweep(write_sweep(tmp_path)))
    lists = {name: (f"{name}.json", "sha") for name in plan.datasets}
    assert planned_caches(plan, lists) == {}
    sweep = gpu_input_sweep(tmp_path)
    sweep.write_text(sweep.read_text().replace("  method: [simclr, samclr]", "  method: [simclr, samclr]\n  cache_scale: [1.5, 2.0]"))
    planned = planned_caches(make_plan(load_sweep(sweep)), lists)
    assert sorted(c.short_side for c in planned.values()) == [48, 64]
    assert all(len(c.trials) == 2 for c in planned.values())


@pytest.mark.slow
def test_sweep_builds_the_cache_once_and_both_trials_read_it_from_the_object_store(ray_session, tmp_path):
    lines = []
    assert run_sweep(str(gpu_input_sweep(tmp_path, epochs=2)), log=lines.append) == 0
    built = [line for line in lines if line.startswith("image cache:")]
    assert len(built) == 1 and "for 2 trial(s)" in built[0], lines
    _, _, children = runs_of(tmp_path)
    assert len(children) == 2
    assert all(r.info.status == "FINISHED" and r.data.tags[IMAGE_CACHE_TAG] == "shared" for r in children)


@pytest.mark.slow
def test_resumed_trials_read_the_cache_the_resuming_driver_builds(tmp_path):
    """SIGKILL the driver (and its Ray) mid-sweep: the caches die with it; ``--resume`` builds them
    again and the restored trials read them from the object store."""
    sweep = gpu_input_sweep(tmp_path, epochs=6)
    proc, cmd, env = start_sweep_and_wait_for_a_checkpoint(tmp_path, 6, sweep, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _, _, before = runs_of(tmp_path)
    assert {r.data.tags.get(IMAGE_CACHE_TAG) for r in before} <= {"shared", None}
    assert_resume_finishes_each_epoch_once(tmp_path, cmd, env, epochs=6)
    _, _, children = runs_of(tmp_path)
    assert any("restored_from_epoch" in r.data.tags for r in children)  # at least the trial killed after its checkpoint
    assert all(r.data.tags[IMAGE_CACHE_TAG] == "shared" for r in children)
