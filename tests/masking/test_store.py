import numpy as np
import pytest

from masking.maskers import MaskerConfig
from masking.regions import Regions, select_regions
from masking.store import ImageRegions, RegionStore, StoreWriter, dataset_files, fingerprint, store_file


def row(path, k):
    boxes = np.arange(4 * k, dtype=np.int32).reshape(k, 4)
    return ImageRegions(path, 64, 48, Regions(boxes, np.arange(k, dtype=np.int64) + 100, np.full(k, 0.5, np.float32)))


def test_fingerprint_follows_file_list_and_masker_config(tmp_path):
    for name, content in [("a.png", b"12"), ("sub/b.png", b"345")]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content)
    files = dataset_files(tmp_path, ["a.png", "sub/b.png"])
    masker = MaskerConfig("felzenszwalb", {"scale": 100}, min_area=200)
    base = fingerprint(files, masker.as_dict())
    assert base == fingerprint(list(reversed(files)), masker.as_dict())  # order does not matter
    assert base != fingerprint(files[:1], masker.as_dict())  # an image less
    assert base != fingerprint(files + [("c.png", 1)], masker.as_dict())  # an image more
    assert base != fingerprint([("a.png", 3), files[1]], masker.as_dict())  # a changed file
    assert base != fingerprint(files, MaskerConfig("felzenszwalb", {"scale": 101}, min_area=200).as_dict())
    assert base != fingerprint(files, MaskerConfig("felzenszwalb", {"scale": 100}, min_area=201).as_dict())
    assert base != fingerprint(files, MaskerConfig("ground_truth", {"scale": 100}, min_area=200).as_dict())


def test_written_store_reads_back_with_lookup_by_path(tmp_path):
    path = store_file(tmp_path, "scenes", "felzenszwalb", "abc")
    writer = StoreWriter(path)
    writer.write_shard([row("x/1.png", 2), row("2.png", 0)])
    writer.write_shard([ImageRegions("bad.jpg", 0, 0, Regions.empty(), error="cannot identify image file")])
    store = writer.finalize(["x/1.png", "2.png", "bad.jpg"])
    loaded = RegionStore.load(path)
    assert len(loaded) == len(store) == 3
    assert loaded["x/1.png"].regions.boxes.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert loaded["x/1.png"].regions.areas.tolist() == [100, 101]
    assert (loaded["x/1.png"].width, loaded["x/1.png"].height) == (64, 48)
    assert loaded.boxes("2.png").shape == (0, 4)
    assert loaded.boxes("not-there.png").shape == (0, 4)
    assert loaded.errors == {"bad.jpg": "cannot identify image file"}
    assert loaded.summary()["unreadable"] == 1
    assert not writer.parts.exists()


def test_interrupted_store_never_reads_as_complete_and_resumes(tmp_path):
    path = store_file(tmp_path, "scenes", "m", "fp")
    writer = StoreWriter(path)
    writer.write_shard([row("1.png", 1)])
    (writer.parts / ".shard-half.parquet.123.tmp").write_bytes(b"PAR1 half written")  # a killed write
    with pytest.raises(FileNotFoundError, match="never completed"):
        RegionStore.load(path)
    resumed = StoreWriter(path)
    assert resumed.done() == {"1.png"}
    with pytest.raises(RuntimeError, match="1 images have no row"):
        resumed.finalize(["1.png", "2.png"])
    assert not path.exists()
    resumed.write_shard([row("2.png", 1), row("1.png", 3)])  # a duplicate row from a retried batch
    store = resumed.finalize(["1.png", "2.png"])
    assert len(store) == 2 and len(store["1.png"].regions) == 1


def _nested_masks(rng, n=24, size=48):
    """Random rectangles of many sizes, some inside others, so the coarsest selection has work to do."""
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        w, h = rng.integers(2, size, 2)
        x, y = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
        masks[i, y:y + h, x:x + w] = True
    return masks


def test_a_store_at_a_small_min_area_filtered_at_load_equals_the_store_at_a_larger_one(tmp_path):
    """What lets one store serve a min_area grid axis (orchestrator.plan): select_regions drops small
    masks before the coarsest selection, so selecting at a larger min_area keeps exactly the regions of
    a smaller one's selection that are at least that large."""
    rng = np.random.default_rng(0)
    images = {f"{i}.png": _nested_masks(rng) for i in range(12)}
    scores = {path: rng.random(len(masks)).astype(np.float32) for path, masks in images.items()}
    small, large = 30, 300
    rows = [ImageRegions(path, 48, 48, select_regions(masks, scores[path], min_area=small)) for path, masks in images.items()]
    writer = StoreWriter(tmp_path / "small.parquet")
    writer.write_shard(rows)
    writer.finalize(images)
    loaded = RegionStore.load(tmp_path / "small.parquet", min_area=large)
    dropped = 0
    for (path, masks), stored in zip(images.items(), rows):
        direct = select_regions(masks, scores[path], min_area=large)
        got = loaded[path].regions
        np.testing.assert_array_equal(got.boxes, direct.boxes)
        np.testing.assert_array_equal(got.areas, direct.areas)
        np.testing.assert_array_equal(got.scores, direct.scores)
        dropped += len(stored.regions) - len(got)
    assert dropped > 0  # the filter had regions to drop, so the equality above says something
    assert len(RegionStore.load(tmp_path / "small.parquet")[next(iter(images))].regions) == len(rows[0].regions)  # no min_area: as stored
