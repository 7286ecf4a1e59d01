"""Masks kept as run-length encodings: the codec, the selection, the store, purity and previews on them."""

import io

import numpy as np
import pytest
from PIL import Image

from masking.maskers import MaskerConfig
from masking.preview import draw
from masking.purity import PurityError, main as purity_main, scenes_from_store, view_pair_purity
from masking.crops import CropSpec
from masking.regions import Regions, select_regions
from masking.rle import decode, encode
from masking.store import ImageRegions, RegionStore, StoreWriter
from orchestrator.region_stage import _row, regions_json


def random_masks(k=5, h=13, w=17, seed=0):
    masks = np.random.default_rng(seed).random((k, h, w)) < 0.4
    masks[1] = False  # an empty mask
    masks[2] = True  # a full one (its first run of zeros has length 0)
    masks[3, 0, 0] = True
    return masks


def test_rle_round_trips_and_matches_segment_anythings_encoding():
    import torch
    from segment_anything_hq.utils.amg import mask_to_rle_pytorch, rle_to_mask

    masks = random_masks()
    counts = encode(masks)
    assert np.array_equal(decode(counts, 13, 17), masks)
    theirs = mask_to_rle_pytorch(torch.from_numpy(masks))
    assert counts == [r["counts"] for r in theirs]  # the same format, count for count
    assert all(np.array_equal(rle_to_mask({"size": [13, 17], "counts": c}), m) for c, m in zip(counts, masks))
    with pytest.raises(ValueError, match="not 13x18"):
        decode(counts, 13, 18)


def test_selection_keeps_the_masks_of_the_kept_regions_only_when_asked():
    masks = np.zeros((3, 20, 20), bool)
    masks[0, :, :10] = True  # left half
    masks[1, 2:6, 2:6] = True  # inside the left half: dropped as not coarsest
    masks[2, 5:15, 12:18] = True
    kept = select_regions(masks, min_area=10, keep_masks=True)
    assert np.array_equal(decode(kept.rle, 20, 20), masks[[0, 2]])
    assert select_regions(masks, min_area=10).rle is None


def test_keep_masks_changes_the_store_fingerprint_only_when_set():
    plain = MaskerConfig("felzenszwalb", {"scale": 100}, min_area=50)
    assert "keep_masks" not in plain.as_dict()  # stores computed before the option keep their names
    assert MaskerConfig("felzenszwalb", {"scale": 100}, min_area=50, keep_masks=True).digest() != plain.digest()


def _store_with_masks(tmp_path, shards=2):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(4):
        masks = np.zeros((3, 24, 32), bool)
        masks[0, :, :16] = True
        masks[1, 4 + i : 12 + i, 20:30] = True
        masks[2, 16:20, 20:22] = rng.random((4, 2)) < 2  # 8 px
        regions = select_regions(masks, min_area=1, keep_masks=True)
        rows.append(ImageRegions(f"{i}.png", 32, 24, regions))
    rows.append(ImageRegions("broken.png", 0, 0, Regions.empty(), "OSError: truncated"))
    writer = StoreWriter(tmp_path / "s.parquet")
    for k in range(shards):
        writer.write_shard(rows[k::shards])
    writer.finalize([r.path for r in rows])
    return rows


def test_a_store_keeps_masks_reads_them_only_when_asked_and_filters_them_with_min_area(tmp_path):
    rows = _store_with_masks(tmp_path)
    plain = RegionStore.load(tmp_path / "s.parquet")
    assert not plain.has_masks and plain["0.png"].regions.rle is None  # what a trial loads: boxes only
    with pytest.raises(ValueError, match="no masks"):
        plain.masks("0.png")
    store = RegionStore.load(tmp_path / "s.parquet", masks=True)
    assert store.has_masks
    for row in rows[:4]:
        assert np.array_equal(store.masks(row.path), decode(row.regions.rle, 24, 32))
        assert np.array_equal(store.boxes(row.path), row.regions.boxes)
    big = RegionStore.load(tmp_path / "s.parquet", min_area=50, masks=True)
    for row in rows[:4]:
        keep = row.regions.areas >= 50
        assert 0 < keep.sum() < len(keep)
        assert np.array_equal(big.masks(row.path), decode(row.regions.rle, 24, 32)[keep])


def test_a_store_written_without_masks_still_loads_when_masks_are_asked_for(tmp_path):
    writer = StoreWriter(tmp_path / "old.parquet")
    writer.write_shard([ImageRegions("a.png", 8, 8, Regions(np.array([[0, 0, 4, 4]], np.int32), np.array([16]), np.array([1.0], np.float32)))])
    writer.finalize(["a.png"])
    store = RegionStore.load(tmp_path / "old.parquet", masks=True)
    assert not store.has_masks and store.boxes("a.png").tolist() == [[0, 0, 4, 4]]


def test_masks_travel_from_the_masker_actor_to_the_store_row():
    regions = select_regions(random_masks(), min_area=1, keep_masks=True)
    row = _row({"path": "a.png", "width": 17, "height": 13, "regions": regions_json(regions), "error": ""})
    assert row.regions.rle == regions.rle and np.array_equal(row.regions.boxes, regions.boxes)


def test_purity_from_a_stores_own_masks(tmp_path, capsys):
    """One region covering a whole image: every pair of views shows it (purity 1); the CLI measures
    a store with masks without any instance-mask folder, and says what is missing otherwise."""
    whole = select_regions(np.ones((1, 40, 40), bool), min_area=1, keep_masks=True)
    writer = StoreWriter(tmp_path / "whole.parquet")
    writer.write_shard([ImageRegions(f"{i}.png", 40, 40, whole) for i in range(3)])
    writer.finalize([f"{i}.png" for i in range(3)])
    store = RegionStore.load(tmp_path / "whole.parquet", masks=True)
    scenes = scenes_from_store(store)
    assert len(scenes) == 3 and all(np.array_equal(s.ids, np.ones((40, 40))) for s in scenes)
    result = view_pair_purity(scenes, (CropSpec(2, 16),), "regions", 1.3, 50, 0)
    assert result.same_object == 1.0 and result.background_view == 0.0
    assert purity_main(["--store", str(tmp_path / "whole.parquet"), "--json", "--draws", "20"]) == 0
    assert '"same_object": 1.0' in capsys.readouterr().out
    _store_with_masks(tmp_path / "rows")
    assert len(scenes_from_store(RegionStore.load(tmp_path / "rows" / "s.parquet", masks=True))) == 4  # the broken image left out
    with pytest.raises(PurityError, match="holds no masks"):
        scenes_from_store(RegionStore.load(tmp_path / "whole.parquet"))
    assert purity_main(["--sampling", "random"]) == 2
    assert "needs --masks" in capsys.readouterr().err


def test_a_preview_fills_the_masks_a_store_kept():
    masks = np.zeros((1, 48, 48), bool)
    masks[0, 10:30, 10:30] = True
    with_masks = select_regions(masks, min_area=1, keep_masks=True)
    without = Regions(with_masks.boxes, with_masks.areas, with_masks.scores)
    image = Image.new("RGB", (48, 48), (128, 128, 128))
    a = np.asarray(Image.open(io.BytesIO(draw([("a.png", image, with_masks)], 1.3, 1, 16, "t"))))
    b = np.asarray(Image.open(io.BytesIO(draw([("a.png", image, without)], 1.3, 1, 16, "t"))))
    assert a.shape == b.shape and (np.abs(a.astype(int) - b.astype(int)).sum(-1) > 30).sum() > 100  # the filled square
