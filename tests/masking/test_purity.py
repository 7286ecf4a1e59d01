"""View-pair purity on generated scenes whose answers are known (one object covering the image,
two halves whose probability is computed by hand, a region box that holds one object)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from masking.crops import CropSpec
from masking.purity import PurityError, Scene, label_counts, load_scenes, main, view_pair_purity
from masking.regions import Regions
from masking.store import ImageRegions, RegionStore, StoreWriter

SIMCLR = (CropSpec(2, 32, scale=(0.08, 1.0)),)
FIXED_SQUARE = (CropSpec(2, 32, scale=(0.25, 0.25), ratio=(1.0, 1.0)),)
"""Every view a 50x50 square of a 100x100 image (area 1/4, aspect 1), at a uniform position."""


def two_halves(split: int = 40, size: int = 100) -> np.ndarray:
    ids = np.full((size, size), 2, np.int64)
    ids[:, :split] = 1
    return ids


def test_one_object_covering_the_image_gives_purity_one():
    scene = Scene("one.png", np.ones((64, 48), np.int64), classes=[3])
    result = view_pair_purity([scene], SIMCLR, "random", draws=200)
    assert result.same_object == 1.0 and result.same_class == 1.0 and result.background_view == 0.0
    assert result.pairs == 200 and result.regions_per_image is None and result.fallback is None


def test_random_sampling_on_two_halves_matches_the_hand_computation():
    # columns 0..39 are object 1, 40..99 object 2. A 50 px square view starting at x ~ U(0, 50) holds
    # the columns ceil(x - 0.5) .. ceil(x - 0.5) + 49: 40 - c0 of object 1 and c0 + 10 of object 2,
    # so object 1 dominates iff c0 <= 15 (a tie, c0 = 15, goes to the lower id), i.e. x <= 15.5:
    # p = 15.5 / 50 = 0.31. Two independent views: P(same object) = p^2 + (1 - p)^2 = 0.5722.
    result = view_pair_purity([Scene("halves.png", two_halves())], FIXED_SQUARE, "random", draws=20000, seed=1)
    assert result.same_object == pytest.approx(0.31**2 + 0.69**2, abs=0.012)  # 3.4 standard errors
    assert result.same_class is None and result.background_view == 0.0


def test_same_class_counts_different_objects_of_one_class():
    scene = Scene("halves.png", two_halves(), classes=[5, 5])
    result = view_pair_purity([scene], FIXED_SQUARE, "random", draws=2000)
    assert result.same_class == 1.0 and result.same_object < 0.7  # two objects, one class
    other = view_pair_purity([Scene("halves.png", two_halves(), classes=[5, 6])], FIXED_SQUARE, "random", draws=2000)
    assert other.same_class == other.same_object


def test_views_inside_a_region_box_holding_one_object_are_pure():
    ids = np.zeros((100, 100), np.int64)
    ids[10:40, 10:40] = 1  # a square object filling its box
    ids[50:95, 50:95] = 2
    box = np.array([[10, 10, 40, 40]], np.int32)
    regions = view_pair_purity([Scene("s.png", ids, box)], SIMCLR, "regions", c=1.0, draws=500)
    assert regions.same_object == 1.0 and regions.background_view == 0.0
    assert regions.regions_per_image == 1.0 and regions.fallback == 0.0
    whole = view_pair_purity([Scene("s.png", ids, box)], SIMCLR, "random", draws=500)
    assert whole.same_object < 0.8 and whole.background_view > 0.5  # the same scene, whole-image views
    wider = view_pair_purity([Scene("s.png", ids, box)], SIMCLR, "regions", c=2.0, draws=500)
    # the box enlarged x2 (-5..55) takes in background and a corner of object 2 (50..55): still object 1
    assert 0.3 < wider.background_view < 0.8 and wider.same_object == 1.0


def test_dominant_instance_ignores_background_and_mostly_background_is_counted_apart():
    ids = np.zeros((100, 100), np.int64)
    ids[:, :20] = 1  # a fifth of the image: every full-image view is 80 % background, yet shows object 1
    whole = (CropSpec(2, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0)),)
    result = view_pair_purity([Scene("strip.png", ids)], whole, "random", draws=10)
    assert result.same_object == 1.0 and result.background_view == 1.0


def test_images_without_regions_fall_back_to_the_whole_image():
    ids = np.zeros((50, 50), np.int64)  # background only: no view shows an object
    scenes = [Scene("a.png", ids, np.zeros((0, 4), np.int32)), Scene("b.png", ids, np.array([[0, 0, 20, 20], [20, 20, 50, 50]]))]
    result = view_pair_purity(scenes, SIMCLR, "regions", draws=10)
    assert result.fallback == 0.5 and result.regions_per_image == 1.0
    assert result.background_view == 1.0 and result.same_object == 0.0


def test_pairs_of_a_multi_crop_method_are_every_pair_of_its_views():
    crops = (CropSpec(2, 32), CropSpec(3, 16, scale=(0.05, 0.4)))
    result = view_pair_purity([Scene("one.png", np.ones((40, 40), np.int64))], crops, "random", draws=7)
    assert result.pairs == 7 * 10 and result.same_object == 1.0


def test_vectorised_counts_equal_a_pixel_loop():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, (23, 31))
    boxes = np.sort(rng.uniform(-2, 35, (50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)[:, [0, 2, 1, 3]]
    labels, counts = label_counts(ids, boxes)
    ys, xs = np.mgrid[0:23, 0:31] + 0.5
    for box, got in zip(boxes, counts):
        inside = (xs >= box[0]) & (xs < box[2]) & (ys >= box[1]) & (ys < box[3])
        assert got.tolist() == [int((inside & (ids == label)).sum()) for label in labels]


def test_purity_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    view_pair_purity([Scene("h.png", two_halves())], SIMCLR, "random", draws=5)
    assert torch.equal(torch.rand(3), expected)


def test_same_seed_same_result_and_bad_draws_rejected():
    scene = Scene("h.png", two_halves())
    assert view_pair_purity([scene], SIMCLR, "random", draws=50, seed=4) == view_pair_purity([scene], SIMCLR, "random", draws=50, seed=4)
    with pytest.raises(PurityError, match="draws"):
        view_pair_purity([scene], SIMCLR, "random", draws=0)
    with pytest.raises(PurityError, match="at least 2"):
        view_pair_purity([scene], (CropSpec(1, 32),), "random")


def _dataset(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    one = np.zeros((60, 80), np.uint8)
    one[:, :] = 1
    Image.fromarray(one).save(masks / "a.png")
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(masks / "b.png")
    store_path = tmp_path / "store.parquet"
    writer = StoreWriter(store_path)
    box = np.array([[0, 0, 80, 60]], np.int32)
    writer.write_shard([
        ImageRegions("a.png", 80, 60, Regions(box, np.array([4800]), np.ones(1, np.float32))),
        ImageRegions("b.png", 80, 60, Regions.empty()),
        ImageRegions("c.png", 0, 0, Regions.empty(), error="cannot identify image file"),
    ])
    writer.finalize(["a.png", "b.png", "c.png"])
    (tmp_path / "classes.json").write_text(json.dumps({"a.png": [2], "b.png": []}))
    return masks, store_path


def test_scenes_load_from_a_store_leaving_out_its_errors(tmp_path):
    masks, store_path = _dataset(tmp_path)
    scenes = load_scenes(masks, store=RegionStore.load(store_path))
    assert [s.path for s in scenes] == ["a.png", "b.png"]  # c.png: unreadable, no trial trains on it
    result = view_pair_purity(scenes, SIMCLR, "regions", draws=20)
    assert result.fallback == 0.5 and result.same_object == 0.5 and result.background_view == 0.5
    assert [s.path for s in load_scenes(masks, store=RegionStore.load(store_path), max_images=1)] == ["a.png"]


def test_cli_prints_purity_and_json(tmp_path, capsys):
    masks, store_path = _dataset(tmp_path)
    assert main(["--masks", str(masks), "--store", str(store_path), "--classes", str(tmp_path / "classes.json"), "--draws", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 2 and out["same_object"] == 0.5 and out["same_class"] == 0.5 and out["fallback"] == 0.5
    assert main(["--masks", str(masks), "--sampling", "random", "--method", "dino", "--draws", "4"]) == 0
    assert "same object 50.0 %" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--masks", "{tmp}/nowhere", "--sampling", "random"], "masks folder"),
        (["--masks", "{tmp}/masks", "--store", "{tmp}/missing.parquet"], "cannot read region store"),
        (["--masks", "{tmp}/masks", "--sampling", "random", "--method", "nope"], "unknown method"),
        (["--masks", "{tmp}/masks", "--sampling", "random", "--param", "min_scale"], "KEY=VALUE"),
        (["--masks", "{tmp}/masks", "--sampling", "random", "--param", "min_scale=7"], "min_scale"),
        (["--masks", "{tmp}/masks", "--sampling", "random", "--classes", "{tmp}/store.parquet"], "classes file"),
        (["--masks", "{tmp}/masks", "--sampling", "random", "--c", "0.5"], "--c"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, args, message):
    _dataset(tmp_path)
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_generated_scenes_carry_their_classes(synthetic):
    from samdata.synthetic import render_scene

    from tests.conftest import TINY

    classes = json.loads(synthetic.classes.read_text())
    assert len(classes) == TINY.scenes and classes["00003.png"] == render_scene(TINY, 3)[2]
    ids = np.asarray(Image.open(synthetic.masks / "00003.png"))
    assert int(ids.max()) == len(classes["00003.png"])
    result = view_pair_purity(load_scenes(synthetic.masks, classes=classes, max_images=8), SIMCLR, "random", draws=16)
    assert result.same_class >= result.same_object  # the same object is the same class


def test_a_dataset_generated_before_classes_json_gets_it_on_reuse(tmp_path):
    from samdata.synthetic import generate

    from tests.conftest import TINY

    small = __import__("dataclasses").replace(TINY, scenes=3, eval_train_per_class=1, eval_val_per_class=1)
    paths = generate(tmp_path, small)
    written = paths.classes.read_text()
    paths.classes.unlink()  # as a dataset generated by the previous version
    stamp = (paths.images / "00000.png").stat().st_mtime_ns
    assert generate(tmp_path, small).classes.read_text() == written
    assert (paths.images / "00000.png").stat().st_mtime_ns == stamp  # the scenes were not rewritten
