"""Grid axes over evaluation and masker settings (``eval.knn_k``, ``maskers.fz.min_area``,
``maskers.fz.params.scale``): checked before Ray starts, planned with the region stores they need
and no duplicate trials, recorded in the trials' params, sent to the trials, and part of what
``--resume`` identifies a trial by. No Ray here: the plan, the trial specs and the resume check."""

import json

import pytest

from orchestrator.config import SweepError, load_sweep, parse_sweep
from orchestrator.plan import describe, make_plan
from orchestrator.resume import check_resume, trial_identities, trial_identity
from orchestrator.rundirs import new_run_dir, storage_location, write_state
from orchestrator.sweep import _trial_spec
from orchestrator.trial_table import varying_axes

SWEEP = """\
name: t
datasets:
  scenes:
    root: {root}/data
    synthetic: {{scenes: 8, scene_size: 64, object_size: [20, 30], eval_size: 32, num_classes: 4}}
maskers:
  gt: {{name: ground_truth, min_area: 100}}
  fz: {{name: felzenszwalb, min_area: 100, params: {{scale: 60}}}}
grid:
  method: [simclr, samclr]
  masker: [gt, fz]
train: {{batch_size: 4, image_size: 32, backbone_width: 8, stem: cifar, workers: 0, epochs: 1}}
eval:
  knn_k: 20
  sets:
    shapes: {{dataset: scenes}}
storage: {root}/runs
"""


def _plan(tmp_path, extra_axes: str = "", text: str | None = None):
    text = (text or SWEEP).format(root=tmp_path).replace("  masker: [gt, fz]\n", "  masker: [gt, fz]\n" + extra_axes)
    return make_plan(parse_sweep(text, "<s>"))


def test_a_min_area_axis_multiplies_only_its_maskers_trials_and_shares_one_store(tmp_path):
    plan = _plan(tmp_path, "  maskers.fz.min_area: [400, 100]\n")
    keys = [t.key for t in plan.trials]
    assert keys == [
        "simclr", "samclr,masker=gt", "samclr,masker=fz,maskers.fz.min_area=400", "samclr,masker=fz,maskers.fz.min_area=100"
    ]  # simclr samples whole images and gt has no such axis: neither is multiplied
    by_key = {t.key: t for t in plan.trials}
    fz400, fz100 = by_key["samclr,masker=fz,maskers.fz.min_area=400"], by_key["samclr,masker=fz,maskers.fz.min_area=100"]
    assert [(j.masker, j.config.min_area) for j in plan.mask_jobs] == [("gt", 100), ("fz", 100)]  # one fz store, at the smallest value
    fz_store = plan.mask_jobs[1].store
    assert fz400.store == fz100.store == fz_store and (fz400.min_area, fz100.min_area) == (400, 100)
    # the regions a trial trains on are those of the store a min_area of 400 alone would plan
    alone = _plan(tmp_path, text=SWEEP.replace("fz: {{name: felzenszwalb, min_area: 100", "fz: {{name: felzenszwalb, min_area: 400"))
    assert fz400.regions == next(j.store for j in alone.mask_jobs if j.masker == "fz") != fz_store
    assert fz100.regions == fz_store
    # MLflow params: under the grid key, absent where the trial ignores the axis
    assert fz400.params()["maskers.fz.min_area"] == 400 and fz100.params()["maskers.fz.min_area"] == 100
    assert "maskers.fz.min_area" not in by_key["simclr"].params() and "maskers.fz.min_area" not in by_key["samclr,masker=gt"].params()
    axes, values = varying_axes(plan)  # the console's trial table finds the axis in the params
    assert "maskers.fz.min_area" in axes and values["simclr"]["maskers.fz.min_area"] == "-"
    assert values[fz400.key]["maskers.fz.min_area"] == "400"
    # the trial is told to drop the smaller regions of the shared store
    spec = _trial_spec(plan, fz400, "uri", "run", {"scenes": ("list.json", "sha")})
    assert (spec["store"], spec["min_area"]) == (str(fz_store), 400)
    assert "maskers.fz.min_area=400" in describe(plan)


def test_a_masker_parameter_axis_makes_one_store_per_value(tmp_path):
    plan = _plan(tmp_path, "  maskers.fz.params.scale: [30, 90]\n  maskers.fz.min_area: [100, 400]\n")
    fz = [t for t in plan.trials if t.masker == "fz"]
    assert len(plan.trials) == 1 + 1 + 2 * 2 and len(fz) == 4
    jobs = [j for j in plan.mask_jobs if j.masker == "fz"]
    assert sorted(j.config.params["scale"] for j in jobs) == [30, 90] and len({str(j.store) for j in jobs}) == 2
    assert all(j.config.min_area == 100 for j in jobs)  # min_area still filters at load: no store per value
    assert len({j.label for j in jobs}) == 2  # the log and the previews tell them apart
    for t in fz:
        job = next(j for j in jobs if j.store == t.store)
        assert job.config.params["scale"] == t.params()["maskers.fz.params.scale"] == t.settings["maskers.fz.params.scale"]


def test_an_eval_axis_multiplies_every_trial_and_reaches_its_evaluation(tmp_path):
    plan = _plan(tmp_path, "  eval.knn_k: [5, 50]\n  eval.linear_epochs: [0, 3]\n")
    assert len(plan.trials) == 3 * 2 * 2  # simclr, samclr x gt, samclr x fz; every one evaluates
    for t in plan.trials:
        assert (t.eval.knn_k, t.eval.linear_epochs) == (t.params()["eval.knn_k"], t.params()["eval.linear_epochs"])
        assert t.eval.knn_t == plan.sweep.eval.settings.knn_t  # the rest as the eval section says
        spec = _trial_spec(plan, t, "uri", "run", {"scenes": ("list.json", "sha")})
        assert (spec["eval"]["knn_k"], spec["eval"]["linear_epochs"]) == (t.eval.knn_k, t.eval.linear_epochs)
    assert {(t.eval.knn_k, t.eval.linear_epochs) for t in plan.trials} == {(5, 0), (5, 3), (50, 0), (50, 3)}
    assert "simclr,eval.knn_k=5,eval.linear_epochs=0" in {t.key for t in plan.trials}


@pytest.mark.parametrize(
    "axis,expected",
    [
        ("maskers.sam.min_area: [1]", r"<s>:12:3: grid\.maskers\.sam\.min_area: masker 'sam' is not in maskers \(gt, fz\)"),
        ("maskers.fz.min_area: [100, -1]", r"<s>:12:\d+: grid\.maskers\.fz\.min_area\.1: -1: Input should be greater than or equal to 0"),
        ("maskers.fz.containment: [0.5, 2]", r"<s>:12:\d+: grid\.maskers\.fz\.containment\.1: 2: Input should be less than or equal to 1"),
        ("maskers.fz.params.scal: [1]", r"<s>:12:3: grid\.maskers\.fz\.params\.scal: unknown felzenszwalb parameter 'scal'; known: scale, "),
        ("maskers.fz.params.scale: [30, -1]", r"<s>:12:\d+: grid\.maskers\.fz\.params\.scale\.1: -1: felzenszwalb masker: scale must be > 0, got -1"),
        ("maskers.gt.params.scale: [30]", r"<s>:12:3: grid\.maskers\.gt\.params\.scale: unknown ground_truth parameter 'scale'"),
        ("maskers.fz.name: [hqsam]", r"<s>:12:3: grid\.maskers\.fz\.name: unknown grid key 'maskers\.fz\.name': a dotted grid key is one of eval\.<setting>, "),
        ("train.epochs: [1, 2]", r"<s>:12:3: grid\.train\.epochs: unknown grid key 'train\.epochs'"),
        ("eval.knn: [5]", r"<s>:12:3: grid\.eval\.knn: unknown eval setting 'knn'; known: every, knn_k, "),
        ("eval.knn_k: [5, 0]", r"<s>:12:\d+: grid\.eval\.knn_k\.1: 0: Input should be greater than or equal to 1"),
        ("eval.linear_protocol: [fast, slow]", r"<s>:12:\d+: grid\.eval\.linear_protocol\.1: 'slow': Input should be 'fast' or 'reference'"),
        ("eval.knn_k: []", r"<s>:12:\d+: grid\.eval\.knn_k: empty list"),
        ("maskers.fz.min_area: [100, 100]", r"<s>:12:\d+: grid\.maskers\.fz\.min_area: lists a value twice"),
    ],
)
def test_a_wrong_setting_axis_is_one_line_naming_it(tmp_path, axis, expected):
    text = SWEEP.format(root=tmp_path).replace("  masker: [gt, fz]\n", f"  masker: [gt, fz]\n  {axis}\n")
    with pytest.raises(SweepError, match=expected) as info:
        parse_sweep(text, "<s>")
    assert "\n" not in str(info.value)


def test_an_axis_of_a_masker_no_trial_uses_stops_the_plan(tmp_path):
    text = SWEEP.replace("  masker: [gt, fz]\n", "  masker: [gt]\n  maskers.fz.min_area: [100, 400]\n")
    with pytest.raises(SweepError, match=r"^grid\.maskers\.fz\.min_area: no trial samples regions with masker 'fz'"):
        _plan(tmp_path, text=text)


def test_resume_identities_hold_the_axis_values(tmp_path):
    one = {t.key: t for t in _plan(tmp_path, "  maskers.fz.min_area: [400, 100]\n  eval.knn_k: [5, 20]\n").trials}
    ids = {trial_identity(_plan(tmp_path), t) for t in one.values()}
    assert len(ids) == len(one)  # every value of every axis is another trial
    # a value written in the file and the same value as an axis are one trial: a store shared by a
    # min_area axis and per-trial eval settings do not change what a trial is
    plain = _plan(tmp_path, text=SWEEP.replace("fz: {{name: felzenszwalb, min_area: 100", "fz: {{name: felzenszwalb, min_area: 400"))
    same = next(t for t in plain.trials if t.masker == "fz")
    assert trial_identity(plain, same) == trial_identity(plain, one["samclr,masker=fz,maskers.fz.min_area=400,eval.knn_k=20"])
    assert trial_identity(plain, same) != trial_identity(plain, one["samclr,masker=fz,maskers.fz.min_area=400,eval.knn_k=5"])


def test_allow_changes_adds_the_trials_of_an_appended_min_area_and_keeps_the_old_ones(tmp_path):
    sweep = tmp_path / "t.yaml"
    sweep.write_text(SWEEP.format(root=tmp_path).replace("  masker: [gt, fz]\n", "  masker: [gt, fz]\n  maskers.fz.min_area: [400]\n"))
    old = make_plan(load_sweep(sweep))
    run_dir = new_run_dir(storage_location("storage", str(tmp_path / "runs")), "t")
    write_state(run_dir, {"sweep": "t", "trials": trial_identities(old)})
    (run_dir / "sweep.yaml").write_bytes(sweep.read_bytes())
    sweep.write_text(sweep.read_text().replace("maskers.fz.min_area: [400]", "maskers.fz.min_area: [400, 100]"))
    config = load_sweep(sweep)
    new = make_plan(config)
    assert next(j for j in new.mask_jobs if j.masker == "fz").config.min_area == 100  # the store changed for the old trial too
    resumed = check_resume(run_dir, config, new, str(sweep), allow_changes=True)
    assert resumed.added == ("samclr,masker=fz,maskers.fz.min_area=100",)
    assert {t.key for t in resumed.plan.trials} == {t.key for t in old.trials} | set(resumed.added)  # old names kept
    sweep.write_text(sweep.read_text().replace("maskers.fz.min_area: [400, 100]", "maskers.fz.min_area: [300, 100]"))
    config = load_sweep(sweep)
    with pytest.raises(SweepError, match=r"alter or remove trial\(s\) samclr,masker=fz"):
        check_resume(run_dir, config, make_plan(config), str(sweep), allow_changes=True)


@pytest.mark.slow
def test_a_min_area_sweep_runs_two_trials_on_one_store_and_records_the_values(ray_session, tmp_path):
    from orchestrator.purity import FILE as PURITY
    from orchestrator.sweep import run_sweep
    from tests.orchestrator.test_sweep import SWEEP as TINY, runs_of

    text = TINY.format(root=tmp_path, epochs=1).replace("method: [simclr, samclr]", "method: [samclr]")
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(text.replace("  masker: [gt]\n", "  masker: [gt]\n  maskers.gt.min_area: [50, 400]\n"))
    assert run_sweep(str(sweep), log=lambda line: None) == 0
    client, parents, children = runs_of(tmp_path)
    assert sorted((r.data.tags["trial_id"], r.data.params["maskers.gt.min_area"], r.info.status) for r in children) == [
        ("samclr,maskers.gt.min_area=400", "400", "FINISHED"), ("samclr,maskers.gt.min_area=50", "50", "FINISHED")
    ]
    stores = sorted((tmp_path / "runs" / "regions").glob("*.parquet"))
    assert len(stores) == 1 and stores[0].name.startswith("scenes--gt--")  # one store served both trials
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("tiny-"))
    rows = {r["masker_settings"]["maskers.gt.min_area"]: r for r in json.loads((run_dir / PURITY).read_text())}
    assert sorted(rows) == [50, 400] and rows[400]["regions_per_image"] <= rows[50]["regions_per_image"]
    metrics = parents[0].data.metrics
    assert {"purity/scenes/gt/maskers.gt.min_area_50/c_1.3/same_object", "purity/scenes/gt/maskers.gt.min_area_400/c_1.3/same_object"} <= set(metrics)
