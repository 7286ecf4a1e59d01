"""View-pair purity in a sweep: measured by the driver per (dataset, masker, c, crops), logged to the
parent run, and shown in the report beside the KNN gain with its rank correlation."""

import json

import numpy as np

from masking.maskers import regions_of
from masking.store import ImageRegions, StoreWriter
from orchestrator import purity
from orchestrator.config import load_sweep
from orchestrator.plan import make_plan
from orchestrator.report import configurations, read_purity, write_report
from orchestrator.tracking import log_files
from samdata.image_files import load_rgb
from tests.orchestrator.test_report import UNTRAINED, fake_sweep, row

SWEEP = """\
name: tiny
datasets:
  scenes:
    root: {root}/data
    synthetic: {{scenes: 16, scene_size: 64, object_size: [20, 30], objects_per_scene: [2, 3], eval_size: 32,
                num_classes: 4, eval_train_per_class: 2, eval_val_per_class: 1, clutter: 10}}
maskers:
  gt: {{name: ground_truth, min_area: 100}}
  fz: {{name: felzenszwalb, min_area: 100}}
grid:
  method: [simclr, samclr]
  masker: [gt, fz]
  c: [1.0, 2.0]
train: {{batch_size: 8, image_size: 32, min_scale: 0.2, epochs: 1}}
seeds: [0, 1]
eval:
  sets:
    shapes: {{dataset: scenes}}
storage: {root}/runs
"""


def _plan_and_stores(tmp_path):
    (tmp_path / "tiny.yaml").write_text(SWEEP.format(root=tmp_path))
    plan = make_plan(load_sweep(str(tmp_path / "tiny.yaml")), base=tmp_path)
    stores = {}
    for job in plan.mask_jobs:  # what the Ray Data stage computes, here in-process
        dataset = plan.datasets[job.dataset]
        masker = job.config.build()
        writer = StoreWriter(job.store)
        rows = []
        for path in dataset.paths:
            image = np.asarray(load_rgb(dataset.images / path))
            rows.append(ImageRegions(path, image.shape[1], image.shape[0], regions_of(masker, job.config, image, path)))
        writer.write_shard(rows)
        stores[str(job.store)] = writer.finalize(dataset.paths)
    return plan, stores


def test_driver_measures_each_dataset_masker_c_and_crops_once(tmp_path):
    plan, stores = _plan_and_stores(tmp_path)
    images = {name: list(d.paths) for name, d in plan.datasets.items()}
    lines = []
    rows = purity.measure(plan, stores, images, max_images=16, draws=16, log=lines.append)
    keys = sorted((r["masker"] or "-", r["c"] or 0) for r in rows)
    assert keys == [("-", 0), ("fz", 1.0), ("fz", 2.0), ("gt", 1.0), ("gt", 2.0)]  # simclr: one row, masker and c ignored
    by = {(r["masker"], r["c"]): r for r in rows}
    assert sorted(by[None, None]["trials"]) == ["simclr,seed=0", "simclr,seed=1"]
    assert sorted(by["gt", 2.0]["trials"]) == ["samclr,masker=gt,c=2.0,seed=0", "samclr,masker=gt,c=2.0,seed=1"]
    assert all(r["crops"] == "2x32px@[0.2,1]" and r["images"] == 16 and r["same_class"] is not None for r in rows)
    # ground-truth boxes at c = 1 hold one object: nearly every pair shows it; whole-image views do not
    assert by["gt", 1.0]["same_object"] > 0.9 > by[None, None]["same_object"]
    assert by["gt", 1.0]["fallback"] == 0.0 and by[None, None]["fallback"] is None
    assert len(lines) == 5 and all(line.startswith("purity scenes/") for line in lines)
    metrics = purity.metrics(rows)
    assert metrics["purity/scenes/gt/c_1.0/same_object"] == by["gt", 1.0]["same_object"]
    assert "purity/scenes/whole_image/c_-/same_object" in metrics
    assert "purity/scenes/whole_image/c_-/fallback" not in metrics  # None under random sampling


def test_datasets_without_masks_get_no_purity(tmp_path):
    plan, stores = _plan_and_stores(tmp_path)
    bare = type(plan.datasets["scenes"])("scenes", plan.datasets["scenes"].images, None, plan.datasets["scenes"].paths)
    plan = type(plan)(**{**plan.__dict__, "datasets": {"scenes": bare}})
    assert purity.measure(plan, stores, {"scenes": list(bare.paths)}) == []


# (method, sampling, masker, c, temperature) -> final KNN of seeds 0, 1, 2, and view-pair purity
ARMS = {
    ("simclr", "random", "-", "-", 0.5): ((0.20, 0.22, 0.24), 0.40),
    ("samclr", "regions", "gt", 1.0, 0.5): ((0.50, 0.52, 0.54), 0.90),
    ("samclr", "regions", "gt", 1.3, 0.5): ((0.60, 0.62, 0.64), 0.80),
    ("samclr", "regions", "gt", 2.0, 0.5): ((0.30, 0.32, 0.34), 0.60),
    ("samclr", "regions", "fz", 1.3, 0.5): ((0.40, 0.42, 0.44), 0.70),
}


def test_report_shows_purity_beside_each_configuration_and_its_rank_correlation(tmp_path):
    arms = {(("method", m), ("sampling", s), ("masker", k), ("c", c), ("temperature", t)): f for (m, s, k, c, t), (f, _) in ARMS.items()}
    uri, experiment, parent, run_dir = fake_sweep(tmp_path, arms=arms)
    rows = [
        {"dataset": "d", "masker": k if k != "-" else None, "c": c, "same_object": p,
         "trials": [f"{m}-{s}-{k}-{c}-{t}-{seed}" for seed in range(3)]}
        for (m, s, k, c, t), (_, p) in ARMS.items()
    ]
    log_files(uri, parent, {"purity.json": json.dumps(rows).encode()})
    assert read_purity(uri, parent) == rows
    text = write_report(uri, experiment, parent, run_dir, "fake")[0].read_text()
    assert row(text, "configuration")[2] == "view-pair purity"
    assert row(text, "samclr sampling=regions masker=gt c=1.3")[2] == "80.0" and row(text, "simclr sampling=random")[2] == "40.0"
    assert row(text, "untrained network (epoch 0)")[2] == ""
    # purity ranks gt1.0 > gt1.3 > fz1.3 > gt2.0; the gains rank gt1.3 > gt1.0 > fz1.3 > gt2.0:
    # d = (1, -1, 0, 0), rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8, over the untrained network and over
    # SimCLR alike (both shift every configuration's gain by the same amount per seed)
    correlation = row(text, "samclr τ=0.5")
    assert correlation[1:] == ["toy", "4", "+0.80 (n = 4)", "+0.80 (n = 4)"]
    assert UNTRAINED  # the gains are over these epoch-0 scores


def test_report_without_purity_has_no_purity_column(tmp_path):
    uri, experiment, parent, run_dir = fake_sweep(tmp_path)
    text = write_report(uri, experiment, parent, run_dir, "fake")[0].read_text()
    assert "view-pair purity" not in text and read_purity(uri, parent) == []


def test_fewer_than_three_region_configurations_give_no_correlation(tmp_path):
    arms = {(("method", m), ("sampling", s), ("masker", k), ("c", c), ("temperature", t)): f
            for (m, s, k, c, t), (f, _) in ARMS.items() if c in ("-", 1.0, 2.0)}
    uri, experiment, parent, run_dir = fake_sweep(tmp_path, arms=arms)
    rows = [{"same_object": p, "trials": [f"{m}-{s}-{k}-{c}-{t}-{seed}" for seed in range(3)]}
            for (m, s, k, c, t), (_, p) in ARMS.items() if c in ("-", 1.0, 2.0)]
    log_files(uri, parent, {"purity.json": json.dumps(rows).encode()})
    text = write_report(uri, experiment, parent, run_dir, "fake")[0].read_text()
    assert "Fewer than 3 region configurations" in text and "ρ(purity" not in text
    configs = configurations([], rows)
    assert configs == []


def test_a_configuration_whose_seeds_have_their_own_regions_shows_their_mean_purity(tmp_path):
    """A later round's trials each train on the regions of their own source's checkpoint
    (``orchestrator.rounds``): one purity row per seed, and the report shows their mean."""
    arms = {(("method", m), ("sampling", s), ("masker", k), ("c", c), ("temperature", t)): f for (m, s, k, c, t), (f, _) in ARMS.items()}
    uri, experiment, parent, run_dir = fake_sweep(tmp_path, arms=arms)
    gt13 = "samclr-regions-gt-1.3-0.5"
    rows = [{"same_object": p, "background_view": 0.1 * seed, "trials": [f"{gt13}-{seed}"]} for seed, p in enumerate((0.5, 0.6, 0.9))]
    log_files(uri, parent, {"purity.json": json.dumps(rows).encode()})
    text = write_report(uri, experiment, parent, run_dir, "fake")[0].read_text()
    assert row(text, "samclr sampling=regions masker=gt c=1.3")[2] == "66.7"
    assert row(text, "samclr sampling=regions masker=gt c=1.0")[2] == "–"  # not measured
    mean = purity.seed_mean(rows)
    assert mean["rows"] == 3 and abs(mean["background_view"] - 0.1) < 1e-12 and mean["same_class"] is None
