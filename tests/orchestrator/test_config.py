"""Bad sweep files stop before Ray starts, with one line naming the field and the file position."""


import pytest

from orchestrator.config import SweepError, load_sweep, parse_sweep
from orchestrator.plan import make_plan

GOOD = """\
name: t
datasets:
  scenes:
    root: {root}
    synthetic: {{scenes: 8, scene_size: 64, object_size: [20, 30], eval_size: 32, num_classes: 4}}
maskers:
  gt: {{name: ground_truth, min_area: 100}}
grid:
  method: [simclr, samclr]
  masker: [gt]
  c: [1.0, 1.3]
train: {{batch_size: 4, image_size: 32, backbone_width: 8, stem: cifar, workers: 0, epochs: 1}}
eval:
  sets:
    shapes: {{dataset: scenes}}
"""


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("  c: [1.0, 1.3]", "  c: [1.0, 0.5]", r"<s>:11:12: grid\.c\.1: 0\.5: Input should be greater than or equal to 1"),
        ("  method: [simclr, samclr]", "  method: [simclr, byol2]", r"<s>:9:20: grid\.method\.1: unknown method 'byol2'; known: byol, dino, frozen, moco, samclr, sce, simclr, swav"),
        ("batch_size: 4", "batch_size: four", r"<s>:12:\d+: train\.batch_size: Input should be a valid integer"),
        ("batch_size: 4", "batchsize: 4", r"<s>:12:\d+: train\.batchsize: unknown key 'batchsize'"),
        ("  masker: [gt]", "  masker: [sam]", r"<s>:10:\d+: grid\.masker\.0: 'sam' is not in maskers \(gt\)"),
        ("  c: [1.0, 1.3]", "  colour: [1]", r"<s>:11:3: grid\.colour: unknown grid key 'colour'"),
        ("  c: [1.0, 1.3]", "  c: []", r"<s>:11:\d+: grid\.c: empty list"),
        ("  c: [1.0, 1.3]", "  c: [1.3, 1.3]", r"<s>:11:\d+: grid\.c: lists a value twice"),
        ("  gt: {name: ground_truth, min_area: 100}", "  gt: {name: sam2, min_area: 100}", r"<s>:7:\d+: maskers\.gt\.name: unknown masker 'sam2'"),
        ("name: t", "name: a b", r"<s>:1:\d+: name: name 'a b' must start with a letter or digit"),
        ("    shapes: {dataset: scenes}", "    shapes: {dataset: other}", r"<s>:\d+:\d+: eval\.sets\.shapes\.dataset: 'other' is not a synthetic dataset"),
        ("    shapes: {dataset: scenes}", "    shapes: {kind: imagenet, root: x}", r"<s>:\d+:\d+: eval\.sets\.shapes\.kind: unknown eval set kind 'imagenet'"),
        ("train: {", "train: {epochs: 0, ", r"<s>:12:\d+: train\.epochs: duplicate key"),
        ("epochs: 1}", "epochs: 0}", r"<s>:12:\d+: train\.epochs: Input should be greater than or equal to 1"),
        ("grid:", "grid: [1]\nold_grid:", r"<s>:\d+:\d+: grid: Input should be a valid dictionary"),
        ("    root: ", "    rot: 1\n    root: ", r"<s>:4:\d+: datasets\.scenes\.rot: unknown key 'rot'"),
        ("name: t\n", "name: t\n  bad: [\n", r"<s>:\d+:\d+: YAML syntax error"),
        ("  c: [1.0, 1.3]", "  queue_size: [64]", r"<s>:11:3: grid\.queue_size: 'queue_size' is not a setting of simclr, samclr"),
        ("  c: [1.0, 1.3]", "  temperature: [0.5, -1]", r"<s>:11:\d+: grid\.temperature\.1: simclr: temperature: Input should be greater than 0"),
        ("workers: 0,", "workers: 0, cj_strength: 3.0,", r"<s>:\d+:\d+: grid: simclr: cj_strength: Input should be less than or equal to 2\.5"),
        ("workers: 0,", "workers: 0, n_prototypes: 10,", r"<s>:\d+:\d+: grid: train\.n_prototypes is not a setting of simclr, samclr"),
        ("workers: 0,", "workers: 0, method_params: {}, ", r"<s>:12:\d+: train\.method_params: write method settings directly under train"),
        ("name: t\n", "name: t\nresources: {shared_image_cache: sometimes}\n", r"<s>:2:\d+: resources\.shared_image_cache: Input should be a valid boolean"),
    ],
)
def test_bad_sweep_files_fail_with_one_line_naming_the_place(tmp_path, old, new, expected):
    text = GOOD.format(root=tmp_path / "data")
    bad = text.replace(old, new, 1)
    assert bad != text, old
    with pytest.raises(SweepError, match=expected) as info:
        parse_sweep(bad, "<s>")
    assert "\n" not in str(info.value)


def test_paths_that_do_not_exist_fail_before_ray(tmp_path):
    text = GOOD.format(root=tmp_path / "data")
    folder = text.replace("    synthetic: {scenes: 8, scene_size: 64, object_size: [20, 30], eval_size: 32, num_classes: 4}\n", "")
    with pytest.raises(SweepError, match=r"datasets\.scenes\.root: .*data does not exist"):
        make_plan(parse_sweep(folder.replace("    shapes: {dataset: scenes}", f"    shapes: {{root: {tmp_path}}}")))
    (tmp_path / "evalset" / "train" / "a").mkdir(parents=True)
    no_val = text.replace("    shapes: {dataset: scenes}", f"    shapes: {{root: {tmp_path / 'evalset'}}}")
    with pytest.raises(SweepError, match=r"eval\.sets\.shapes: eval set .*evalset: missing val/"):
        make_plan(parse_sweep(no_val))
    with pytest.raises(SweepError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.yaml")


def test_grid_does_not_duplicate_trials_over_ignored_keys(tmp_path):
    plan = make_plan(parse_sweep(GOOD.format(root=tmp_path / "data")))
    keys = [t.key for t in plan.trials]
    assert keys == ["simclr", "samclr,c=1.0", "samclr,c=1.3"]  # simclr ignores c and masker
    assert len(plan.mask_jobs) == 1 and plan.trials[1].store == plan.mask_jobs[0].store
    assert plan.trials[0].store is None and plan.trials[0].params()["c"] == "-"
    samclr = plan.trials[2].train
    assert (samclr.sampling, samclr.method_params["temperature"], samclr.c) == ("regions", 0.07, 1.3)


def test_temperature_and_seeds_are_ordinary_axes(tmp_path):
    text = GOOD.format(root=tmp_path / "data").replace("  c: [1.0, 1.3]", "  temperature: [0.07, 0.5]") + "seeds: [0, 1]\n"
    plan = make_plan(parse_sweep(text))
    assert len(plan.trials) == 2 * 2 * 2
    assert {(t.train.method, t.train.method_params["temperature"], t.train.seed) for t in plan.trials} == {
        (m, tau, s) for m in ("simclr", "samclr") for tau in (0.07, 0.5) for s in (0, 1)
    }


def test_method_settings_are_shared_under_train_and_axes_in_the_grid_for_the_methods_that_have_them(tmp_path):
    text = (
        GOOD.format(root=tmp_path / "data")
        .replace("  method: [simclr, samclr]", "  method: [simclr, byol, moco]\n  temperature: [0.1, 0.5]")
        .replace("  c: [1.0, 1.3]\n", "")
        .replace("workers: 0,", "workers: 0, preset: paper, base_lr: 0.5, queue_size: 64,")
    )
    plan = make_plan(parse_sweep(text))
    keys = sorted(t.key for t in plan.trials)
    assert keys == ["byol", "moco,temperature=0.1", "moco,temperature=0.5", "simclr,temperature=0.1", "simclr,temperature=0.5"]
    by_key = {t.key: t for t in plan.trials}
    moco = by_key["moco,temperature=0.1"].train.method_params
    assert (moco["temperature"], moco["queue_size"], moco["base_lr"], moco["ema"]) == (0.1, 64, 0.5, 0.999)  # paper's EMA
    byol = by_key["byol"].train.method_params
    assert "temperature" not in byol and "queue_size" not in byol and byol["base_lr"] == 0.5
    params = by_key["moco,temperature=0.5"].params()
    assert params["temperature"] == 0.5 and params["queue_size"] == 64 and "method_params" not in params


def test_regions_without_a_masker_is_an_error(tmp_path):
    text = GOOD.format(root=tmp_path / "data").replace("  masker: [gt]\n", "").replace(
        "  gt: {name: ground_truth, min_area: 100}", "  gt: {name: ground_truth}\n  fz: {name: felzenszwalb}"
    )
    with pytest.raises(SweepError, match="add a 'masker' grid axis"):
        make_plan(parse_sweep(text))


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("train: {", "train: {seed: 3, ", r"<s>:12:\d+: train\.seed: 'seed' is set per trial: use seeds"),
        ("stem: cifar", "stem: vit", r"<s>:12:\d+: train\.stem: Input should be 'imagenet' or 'cifar'"),
        ("eval:\n", "eval:\n  knn_k: 0\n", r"<s>:14:\d+: eval\.knn_k: Input should be greater than or equal to 1"),
        ("eval:\n", "eval:\n  knn: 5\n", r"<s>:14:\d+: eval\.knn: unknown key 'knn'"),
    ],
)
def test_train_and_eval_sections_are_checked_against_the_selfsup_dataclasses(tmp_path, old, new, expected):
    bad = GOOD.format(root=tmp_path / "data").replace(old, new, 1)
    with pytest.raises(SweepError, match=expected):
        parse_sweep(bad, "<s>")


NAME_RULE = r"must start with a letter or digit and hold only letters, digits, '_', '-' and single '\.'"


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("name: t", "name: ../../etc", rf"<s>:1:1: name: name '\.\./\.\./etc' {NAME_RULE}"),
        ("name: t", "name: /abs", rf"<s>:1:1: name: name '/abs' {NAME_RULE}"),
        ("name: t", "name: a..b", rf"<s>:1:1: name: name 'a\.\.b' {NAME_RULE}"),
        ("  scenes:\n", "  ../up:\n", rf"<s>:3:3: datasets\.\.\./up: name '\.\./up' {NAME_RULE}"),
        ("  scenes:\n", "  a/b:\n", rf"<s>:3:3: datasets\.a/b: name 'a/b' {NAME_RULE}"),
        ("  gt: {", "  'g\\t': {", rf"<s>:7:3: maskers\.g\\t: name 'g\\\\t' {NAME_RULE}"),
        ("    shapes: {", "    ..: {", rf"<s>:15:5: eval\.sets\.\.\.: name '\.\.' {NAME_RULE}"),
        ("  gt: {name: ground_truth, min_area: 100}", "  gt: {name: ground_truth, min_area: 100}\n  GT: {name: felzenszwalb}",
         r"<s>:8:3: maskers\.GT: name 'GT' differs from 'gt' only in case"),
        ("  gt: {name: ground_truth, min_area: 100}", "  gt: {name: ground_truth, min_area: 100}\n  gt: {name: felzenszwalb}",
         r"<s>:8:3: maskers\.gt: duplicate key"),
        ("grid:\n  method: [simclr, samclr]\n  masker: [gt]\n  c: [1.0, 1.3]\n", "grid: {}\n", r"<s>:8:1: grid: grid needs a 'method' list"),
        ("grid:\n", "seeds: [0, 1, 0]\ngrid:\n", r"<s>:8:1: seeds: lists a seed twice"),
    ],
)
def test_names_cannot_escape_their_folder_and_must_be_unique(tmp_path, old, new, expected):
    text = GOOD.format(root=tmp_path / "data")
    bad = text.replace(old, new, 1)
    assert bad != text, old
    with pytest.raises(SweepError, match=expected) as info:
        parse_sweep(bad, "<s>")
    assert "\n" not in str(info.value)


def test_paths_may_be_absolute_or_relative(tmp_path, monkeypatch):
    """Data roots, storage and regions_dir are the user's places: absolute or under the working dir."""
    monkeypatch.chdir(tmp_path)
    text = GOOD.format(root=tmp_path / "data") + f"storage: {tmp_path / 'elsewhere' / 'runs'}\nregions_dir: ../regions\n"
    plan = make_plan(parse_sweep(text))
    assert plan.storage.local_path == tmp_path / "elsewhere" / "runs" and plan.regions_dir.local_path == (tmp_path / ".." / "regions").resolve()
    assert plan.datasets["scenes"].images.is_relative_to(tmp_path / "data")


def test_yaml_is_loaded_safely(tmp_path):
    """A tag that would build a Python object (here: run a shell command) is refused, not run."""
    marker = tmp_path / "pwned"
    text = GOOD.format(root=tmp_path / "data").replace("name: t", f'name: !!python/object/apply:os.system ["touch {marker}"]')
    with pytest.raises(SweepError, match=r"<s>:1:7: YAML syntax error: could not determine a constructor for the tag"):
        parse_sweep(text, "<s>")
    assert not marker.exists()


@pytest.mark.parametrize(
    "masker,expected",
    [
        ("{name: hqsam, params: {points_per_sid: 4}}", r"<s>:7:\d+: maskers\.gt\.params\.points_per_sid: unknown hqsam parameter 'points_per_sid'; known: model_type, .*points_per_side"),
        ("{name: hqsam, params: {dtype: fp16}}", r"<s>:7:\d+: maskers\.gt\.params\.dtype: Input should be 'float32', 'bfloat16' or 'float16'"),
        ("{name: hqsam, params: {model_type: vit_x}}", r"<s>:7:\d+: maskers\.gt\.params\.model_type: Input should be 'vit_tiny'"),
        ("{name: hqsam, params: {points_per_side: many}}", r"<s>:7:\d+: maskers\.gt\.params\.points_per_side: Input should be a valid integer"),
        ("{name: felzenszwalb, params: {scales: 300}}", r"<s>:7:\d+: maskers\.gt\.params\.scales: unknown felzenszwalb parameter 'scales'"),
        ("{name: felzenszwalb, params: {min_region: 0.5, max_region: 0.2}}", r"<s>:7:\d+: maskers\.gt\.params: felzenszwalb masker: need 0 <= min_region <= max_region <= 1"),
        ("{name: felzenszwalb, params: {strategies: [[1, 2]]}}", r"<s>:7:\d+: maskers\.gt\.params\.strategies"),
        ("{name: ground_truth, params: {ignore: [0]}}", r"<s>:7:\d+: maskers\.gt\.params\.ignore: unknown ground_truth parameter 'ignore'; known: masks_root, ignore_ids"),
        ("{name: features, params: {clusters: 3}}", r"<s>:7:\d+: maskers\.gt\.params: masker features needs checkpoint in params"),
    ],
)
def test_masker_params_are_checked_against_each_maskers_signature(tmp_path, masker, expected):
    bad = GOOD.format(root=tmp_path / "data").replace("{name: ground_truth, min_area: 100}", masker)
    with pytest.raises(SweepError, match=expected) as info:
        parse_sweep(bad, "<s>")
    assert "\n" not in str(info.value)


def test_good_masker_params_pass(tmp_path):
    for masker in (
        "{name: hqsam, params: {model_type: vit_tiny, points_per_side: 4, pred_iou_thresh: 0, dtype: float32, checkpoint: null}}",
        "{name: felzenszwalb, params: {scale: 300, strategies: [[1, 0, 1, 1, 1]]}}",
        "{name: ground_truth, params: {ignore_ids: [0, 255]}}",
    ):
        parse_sweep(GOOD.format(root=tmp_path / "data").replace("{name: ground_truth, min_area: 100}", masker), "<s>")


def test_a_batch_larger_than_the_dataset_fails_at_plan_time(tmp_path):
    text = GOOD.format(root=tmp_path / "data").replace("batch_size: 4", "batch_size: 16")
    with pytest.raises(SweepError, match=r"trial simclr: batch_size 16 is larger than dataset scenes's 8 images") as info:
        make_plan(parse_sweep(text, "<s>"))
    assert "\n" not in str(info.value)


def test_an_hqsam_dtype_the_cpu_overrides_is_a_plan_warning(tmp_path):
    from orchestrator.plan import describe

    text = GOOD.format(root=tmp_path / "data").replace("{name: ground_truth, min_area: 100}", "{name: hqsam, params: {dtype: bfloat16}}")
    plan = make_plan(parse_sweep(text, "<s>"))
    assert plan.warnings == ("maskers.gt.params.dtype: bfloat16 is overridden with float32: its actors run on the CPU (resources.mask_gpu is 0)",)
    assert "warning: maskers.gt.params.dtype: bfloat16" in describe(plan)
    assert make_plan(parse_sweep(text.replace("dtype: bfloat16", "dtype: float32"), "<s>")).warnings == ()


def test_a_min_scale_axis_does_not_multiply_multi_crop_trials(tmp_path):
    """DINO and SwAV crop at their own global and local scales (no min_scale setting): a min_scale axis
    gives SimCLR one trial per value and each multi-crop method one trial (issue 17; fixed by the
    per-method settings)."""
    text = GOOD.format(root=tmp_path / "data").replace("  method: [simclr, samclr]", "  method: [simclr, dino, swav]")
    text = text.replace("  c: [1.0, 1.3]", "  min_scale: [0.08, 0.2]").replace("  masker: [gt]\n", "")
    keys = sorted(t.key for t in make_plan(parse_sweep(text, "<s>")).trials)
    assert keys == ["dino", "simclr,min_scale=0.08", "simclr,min_scale=0.2", "swav"]


def test_keep_masks_reaches_the_region_store_job(tmp_path):
    text = GOOD.format(root=tmp_path / "data").replace("{name: ground_truth, min_area: 100}", "{name: ground_truth, min_area: 100, keep_masks: true}")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(text)
    plan = make_plan(load_sweep(str(sweep)), base=tmp_path)
    assert [job.config.keep_masks for job in plan.mask_jobs] == [True]
    with pytest.raises(SweepError, match="keep_masks"):
        parse_sweep(text.replace("keep_masks: true", "keep_masks: maybe"), "<s>")
