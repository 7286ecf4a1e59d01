import pickle
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from masking.maskers import MaskerConfig, regions_of
from selfsup.data.evalsets import build_eval_set, eval_transform
from samdata.image_files import list_images, load_rgb
from selfsup.data.pretrain_images import PretrainImages
from selfsup.views import ViewSampler, ViewSpec
from tests.conftest import TINY, TINY_MIN_AREA, UNREADABLE, write_odd_images


def test_ground_truth_masker_finds_every_object(synthetic):
    config = MaskerConfig("ground_truth", {"masks_root": str(synthetic.masks)}, min_area=TINY_MIN_AREA)
    masker = config.build()
    counts = []
    for rel in list_images(synthetic.images)[:10]:
        image = np.asarray(load_rgb(synthetic.images / rel))
        ids = np.asarray(Image.open(synthetic.masks / rel))
        regions = regions_of(masker, config, image, rel)
        big = [i for i in np.unique(ids)[1:] if (ids == i).sum() >= TINY_MIN_AREA]
        assert len(regions) == len(big)
        counts.append(len(regions))
    assert sum(counts) > 10
    with pytest.raises(FileNotFoundError, match="no instance mask"):
        masker(np.zeros((64, 64, 3), np.uint8), "missing.png")


def test_odd_images_are_read_as_rgb_with_exif_orientation(tmp_path):
    sizes = write_odd_images(tmp_path)
    for name, size in sizes.items():
        if size is None:
            with pytest.raises(OSError):  # what PretrainImages and the sweep's image check catch
                load_rgb(tmp_path / name)
            continue
        out = load_rgb(tmp_path / name)
        assert out.mode == "RGB" and out.size == size, name
    assert load_rgb(tmp_path / "gray16.png").getpixel((0, 0)) == (156, 156, 156)  # 40000 / 257
    assert load_rgb(tmp_path / "rgb16.png").getpixel((3, 2)) == (255, 0, 128)  # 16 -> 8 bits per channel
    gray = np.asarray(Image.open(tmp_path / "gray.png"))
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "gray.png")), np.dstack([gray] * 3))
    rgba = np.asarray(Image.open(tmp_path / "rgba.png"))
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "rgba.png")), rgba[..., :3])
    with Image.open(tmp_path / "exif_rotated.jpg") as raw:
        stored = np.asarray(raw.convert("RGB"))
    assert stored.shape == (40, 60, 3)  # pixels stored landscape, shown portrait
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "exif_rotated.jpg")), np.rot90(stored, k=-1))


@pytest.mark.parametrize("sampling", ["random", "regions"])
def test_odd_images_give_views_and_unreadable_ones_are_skipped(tmp_path, sampling):
    """Every readable image, even one smaller than the crop, gives full-size views; the unreadable
    ones are skipped with a warning naming them."""
    sizes = write_odd_images(tmp_path)
    boxes = {name: np.array([[0, 0, size[0], size[1]]], np.int32) for name, size in sizes.items() if size}
    ds = PretrainImages(tmp_path, ViewSampler((ViewSpec(2, 16),), sampling), boxes.get if sampling == "regions" else None)
    assert sorted(ds.paths) == sorted(sizes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(len(ds)):
            views, index = ds[i]
            assert index == i and [tuple(v.shape) for v in views] == [(3, 16, 16)] * 2
    messages = [str(w.message) for w in caught]
    skipped = {name for name in sizes if any(m.startswith(f"skipping unreadable image {tmp_path / name}:") for m in messages)}
    assert skipped == set(UNREADABLE)


def test_pretrain_images_work_in_dataloader_workers(synthetic):
    config = MaskerConfig("ground_truth", {"masks_root": str(synthetic.masks)}, min_area=TINY_MIN_AREA)
    masker = config.build()
    boxes = {
        rel: regions_of(masker, config, np.asarray(load_rgb(synthetic.images / rel)), rel).boxes
        for rel in list_images(synthetic.images)
    }
    ds = PretrainImages(synthetic.images, ViewSampler((ViewSpec(2, 16),), "regions"), boxes.__getitem__)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == TINY.scenes // 8
    v0, v1 = batches[0][0]
    assert v0.shape == v1.shape == (8, 3, 16, 16)
    assert not torch.equal(batches[0][0][0], batches[1][0][0])
    # same generator -> same views, whatever the worker processes
    again = list(torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(again[3][0][1], batches[3][0][1])


def test_empty_or_missing_image_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="holds no images"):
        PretrainImages(tmp_path, ViewSampler())


def test_folder_eval_set_layout(synthetic, tmp_path):
    ev = build_eval_set("folder", synthetic.eval, name="shapes")
    assert ev.name == "shapes" and ev.num_classes == TINY.num_classes
    x, y = ev.make("val", eval_transform(24))[0]
    assert x.shape == (3, 24, 24) and 0 <= y < TINY.num_classes
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="missing val/"):
        build_eval_set("folder", tmp_path)


def _fake_cifar10(root):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, 4).tolist()}
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))


def _fake_stl10(root):
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in [("train", 6), ("test", 4)]:
        rng.integers(0, 256, n * 3 * 96 * 96, dtype=np.uint8).tofile(base / f"{split}_X.bin")
        rng.integers(1, 11, n, dtype=np.uint8).tofile(base / f"{split}_y.bin")
    (base / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    (base / "fold_indices.txt").write_text("0 1 2\n" * 10)


@pytest.mark.parametrize("kind,make_files,n_train", [("cifar10", _fake_cifar10, 20), ("stl10", _fake_stl10, 6)])
def test_torchvision_eval_sets_read_their_official_files(tmp_path, monkeypatch, kind, make_files, n_train):
    # generated files cannot match torchvision's MD5 sums; everything else is torchvision's real loader
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(torchvision.datasets.STL10, "_check_integrity", lambda self: True)
    make_files(tmp_path)
    ev = build_eval_set(kind, tmp_path)
    train = ev.make("train", eval_transform(16))
    assert ev.num_classes == 10 and len(train) == n_train
    x, y = train[0]
    assert x.shape == (3, 16, 16) and 0 <= int(y) < 10
    with pytest.raises(FileNotFoundError, match=f"eval set {kind}: .* not found; set download: true"):
        build_eval_set(kind, tmp_path / "empty").make("val", eval_transform(16))


def test_unreadable_pretraining_image_is_skipped_not_fatal(tmp_path):
    Image.new("RGB", (20, 20), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "c.jpg").write_bytes(b"")
    ds = PretrainImages(tmp_path, ViewSampler((ViewSpec(2, 8),)))
    with pytest.warns(UserWarning, match="skipping unreadable image .*b.png"):
        views, index = ds[1]
    assert index == 1 and views[0].shape == (3, 8, 8)
    (tmp_path / "a.png").write_bytes(b"broken too")
    with pytest.raises(RuntimeError, match="no image could be read"), pytest.warns(UserWarning):
        ds[0]


