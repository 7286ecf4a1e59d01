"""``input: gpu`` trials share one image cache per node through Ray's object store."""

import pytest

from orchestrator.config import load_sweep
from orchestrator.plan import make_plan
from orchestrator.shared_caches import cache_key, planned_caches
from orchestrator.sweep import _trial_spec, run_sweep
from orchestrator.trial import IMAGE_CACHE_TAG
from selfsup.config import TrainConfig
from tests.orchestrator.test_sweep import runs_of, write_sweep


def gpu_input_sweep(root, epochs: int = 3):
    return write_sweep(root, epochs, gpu_input=True)


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


# A killed driver's --resume builds the caches again and its restored trials read them:
# tests/orchestrator/test_sweep.py::test_killed_driver_resumes_with_one_run_per_trial_and_rebuilds_the_shared_image_cache
