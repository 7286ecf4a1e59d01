"""`python -m samdata`: miniature archives in the official layouts, generated here.

No network and no real dataset: every archive is a few tiny images in the official folder layout;
counts are checked against the miniature's own counts (``expected=``) or, to test the shortfall
messages, against the official ones.
"""

from __future__ import annotations

import gzip
import os
import io
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from masking.maskers.ground_truth import GroundTruthMasker
from samdata import registry
from samdata.__main__ import main

H, W = 15, 20


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W, 3), np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def rgb_png(seed: int) -> bytes:
    return png(np.random.default_rng(seed).integers(0, 255, (H, W, 3), np.uint8))


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def load_image(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# --- Cityscapes ---------------------------------------------------------------------------------

CITYSCAPES_MINI = {"train": {"aachen": 2, "bochum": 1}, "val": {"frankfurt": 1}, "test": {"berlin": 1}}
CAR_AND_PERSON = np.zeros((H, W), np.uint16)
CAR_AND_PERSON[:, :5] = 7  # road: a class id, no instance
CAR_AND_PERSON[2:6, 6:10] = 26000  # car 0
CAR_AND_PERSON[8:12, 6:10] = 26001  # car 1
CAR_AND_PERSON[3:9, 12:15] = 24000  # person 0
MANY = (26000 + np.arange(H * W)).reshape(H, W).astype(np.uint16)  # 300 instances: a uint16 mask


def cityscapes_stems() -> dict[str, list[str]]:
    return {
        split: [f"{city}/{city}_000000_{i:06d}" for city, n in cities.items() for i in range(n)]
        for split, cities in CITYSCAPES_MINI.items()
    }


@pytest.fixture
def cityscapes_zips(tmp_path):
    stems = cityscapes_stems()
    images = {"README": b"readme", "license.txt": b"license"}
    gt = {"README": b"readme"}
    for split, names in stems.items():
        for k, stem in enumerate(names):
            images[f"leftImg8bit/{split}/{stem}_leftImg8bit.png"] = rgb_png(k)
            ids = MANY if stem.endswith("aachen_000000_000001") else CAR_AND_PERSON
            gt[f"gtFine/{split}/{stem}_gtFine_instanceIds.png"] = png(ids)
            gt[f"gtFine/{split}/{stem}_gtFine_labelIds.png"] = png(np.zeros((H, W), np.uint8))
            gt[f"gtFine/{split}/{stem}_gtFine_polygons.json"] = b"{}"
    return write_zip(tmp_path / "leftImg8bit_trainvaltest.zip", images), write_zip(tmp_path / "gtFine_trainvaltest.zip", gt)


def test_cityscapes_layout_and_instance_masks_for_the_ground_truth_masker(tmp_path, cityscapes_zips):
    root = tmp_path / "data" / "cityscapes"
    report = registry.prepare("cityscapes", root, cityscapes_zips, expected=CITYSCAPES_MINI)
    assert report.complete, report.lines()

    for split, stems in cityscapes_stems().items():
        assert sorted(p.relative_to(root / "leftImg8bit" / split).as_posix() for p in (root / "leftImg8bit" / split).rglob("*.png")) == [
            f"{s}_leftImg8bit.png" for s in sorted(stems)
        ]
    assert not (root / "instance_masks" / "test").exists()  # gtFine's test annotations are dummies
    assert not (root / "README").exists() and not (root / "gtFine").exists()  # only what a sweep reads

    masker = GroundTruthMasker(root / "instance_masks" / "train")
    images = root / "leftImg8bit" / "train"
    ordinary = masker(load_image(images / "aachen/aachen_000000_000000_leftImg8bit.png"), "aachen/aachen_000000_000000_leftImg8bit.png")
    assert ordinary.masks.shape == (3, H, W)
    assert {m.tobytes() for m in ordinary.masks} == {(CAR_AND_PERSON == v).tobytes() for v in (24000, 26000, 26001)}
    assert not ordinary.masks[:, CAR_AND_PERSON == 7].any()  # stuff is no instance

    many_path = "aachen/aachen_000000_000001_leftImg8bit.png"
    assert np.asarray(Image.open(root / "instance_masks/train" / many_path)).dtype == np.uint16
    many = masker(load_image(images / many_path), many_path)
    assert many.masks.shape == (H * W, H, W) and many.masks.sum(axis=(1, 2)).tolist() == [1] * (H * W)

    val = GroundTruthMasker(root / "instance_masks" / "val")
    assert len(val(load_image(root / "leftImg8bit/val/frankfurt/frankfurt_000000_000000_leftImg8bit.png"), "frankfurt/frankfurt_000000_000000_leftImg8bit.png").masks) == 3


def test_cityscapes_shortfall_against_the_official_counts(tmp_path, cityscapes_zips, capsys):
    root = tmp_path / "cs"
    assert main(["prepare", "cityscapes", "--root", str(root), "--source", str(cityscapes_zips[0])]) == 1
    out = capsys.readouterr().out
    assert "leftImg8bit/train has 3 of 2975 images; missing cities: bremen, cologne" in out
    assert "short: aachen 2 of 174, bochum 1 of 96" in out
    assert "leftImg8bit/val has 1 of 500 images" in out and "leftImg8bit/test has 1 of 1525 images" in out
    assert "no instance masks" in out
    assert out.strip().endswith(f"cityscapes: INCOMPLETE under {root} (3 shortfalls above)")

    assert main(["check", "cityscapes", "--root", str(root)]) == 1
    assert "leftImg8bit/train has 3 of 2975 images" in capsys.readouterr().out


def test_a_second_run_does_nothing_and_an_interrupted_one_is_redone(tmp_path, cityscapes_zips, capsys):
    root = tmp_path / "cs"
    registry.prepare("cityscapes", root, cityscapes_zips, expected=CITYSCAPES_MINI)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    capsys.readouterr()

    assert registry.prepare("cityscapes", root, cityscapes_zips, expected=CITYSCAPES_MINI).complete
    out = capsys.readouterr().out
    assert "images: complete, nothing to do" in out and "instance_masks: complete, nothing to do" in out
    assert [p.stat().st_mtime_ns for p in files] == stamps

    # What a killed run leaves: files missing, a half-written temporary one, no completion mark.
    image = root / "leftImg8bit/train/bochum/bochum_000000_000000_leftImg8bit.png"
    mask = root / "instance_masks/train/aachen/aachen_000000_000000_leftImg8bit.png"
    image.unlink()
    mask.unlink()
    image.with_name(f".{image.name}.partial").write_bytes(b"half")
    (root / ".prepared-cityscapes.json").unlink()
    assert registry.check("cityscapes", root, expected=CITYSCAPES_MINI).shortfalls == [
        "leftImg8bit/train has 2 of 3 images; missing cities: bochum",
        "instance_masks/train has masks for 1 of 2 images; none for aachen/aachen_000000_000000_leftImg8bit.png",
    ]
    assert registry.prepare("cityscapes", root, cityscapes_zips, expected=CITYSCAPES_MINI).complete
    assert image.is_file() and mask.is_file()
    out = capsys.readouterr().out
    assert "images: 1 files written, 4 already there" in out
    assert "instance_masks: 1 instance masks written, 3 already there" in out


# --- ADE20K -------------------------------------------------------------------------------------

ADE_MINI = {"training": 2, "validation": 1}
ADE_STEMS = {"training": ["ADE_train_00000001", "ADE_train_00000002"], "validation": ["ADE_val_00000001"]}
CLASSES = np.zeros((H, W), np.uint8)
CLASSES[:, :4] = 1  # wall: one component
CLASSES[2:5, 6:9] = 20  # chair, and another chair not touching it: two components
CLASSES[9:13, 6:9] = 20
INSTANCES = np.zeros((H, W, 3), np.uint8)
INSTANCES[2:5, 6:9] = (20, 1, 0)  # chair 1 (R = class, G = instance)
INSTANCES[9:13, 6:9] = (20, 2, 0)  # chair 2
INSTANCES[5:9, 12:18] = (16, 3, 0)  # table 3


@pytest.fixture
def ade_sources(tmp_path):
    images = {"ADEChallengeData2016/objectInfo150.txt": b"classes"}
    instances = {}
    for split, stems in ADE_STEMS.items():
        for k, stem in enumerate(stems):
            images[f"ADEChallengeData2016/images/{split}/{stem}.jpg"] = jpeg(k)
            images[f"ADEChallengeData2016/annotations/{split}/{stem}.png"] = png(CLASSES)
            instances[f"annotations_instance/{split}/{stem}.png"] = png(INSTANCES)
    return write_zip(tmp_path / "ADEChallengeData2016.zip", images), write_tar(tmp_path / "annotations_instance.tar", instances, "w")


def test_ade20k_instance_masks_for_the_ground_truth_masker(tmp_path, ade_sources):
    root = tmp_path / "data"
    assert registry.prepare("ade20k", root, ade_sources, expected=ADE_MINI).complete
    images = root / "ADEChallengeData2016/images"
    assert sorted(p.name for p in (images / "training").iterdir()) == ["ADE_train_00000001.jpg", "ADE_train_00000002.jpg"]
    assert not (root / "ADEChallengeData2016/annotations").exists()

    masker = GroundTruthMasker(root / "ADEChallengeData2016/instance_masks/training")
    proposals = masker(load_image(images / "training/ADE_train_00000002.jpg"), "ADE_train_00000002.jpg")
    want = [(INSTANCES[..., 1] == g) for g in (1, 2, 3)]
    assert proposals.masks.shape == (3, H, W)
    assert {m.tobytes() for m in proposals.masks} == {m.tobytes() for m in want}


def test_ade20k_without_instances_says_so_and_semantic_components_are_named_as_such(tmp_path, ade_sources):
    root = tmp_path / "data"
    report = registry.prepare("ade20k", root, ade_sources[:1], expected=ADE_MINI)
    assert report.complete
    assert "ade20k: no instance masks: the ground_truth masker is not available for ade20k" in report.lines()[-2]
    assert not (root / "ADEChallengeData2016/instance_masks").exists()

    report = registry.prepare("ade20k", root, ade_sources[:1], expected=ADE_MINI, semantic_as_instances=True)
    assert report.complete
    assert any("semantic_components/training: one mask per image (connected components of semantic classes" in line for line in report.lines())
    assert not (root / "ADEChallengeData2016/instance_masks").exists()
    masker = GroundTruthMasker(root / "ADEChallengeData2016/semantic_components/training")
    proposals = masker(load_image(root / "ADEChallengeData2016/images/training/ADE_train_00000001.jpg"), "ADE_train_00000001.jpg")
    assert proposals.masks.shape == (3, H, W)  # the wall and two separate chair blobs
    assert sorted(int(m.sum()) for m in proposals.masks) == sorted([H * 4, 9, 12])


# --- ImageNette ---------------------------------------------------------------------------------

IMAGENETTE_CLASSES = ("n01440764", "n02102040")
IMAGENETTE_MINI = {"train": 4, "val": 2}


@pytest.fixture
def imagenette_tgz(tmp_path):
    files = {"imagenette2-160/noisy_imagenette.csv": b"path,label"}
    for split, per_class in (("train", 2), ("val", 1)):
        for c in IMAGENETTE_CLASSES:
            for i in range(per_class):
                files[f"imagenette2-160/{split}/{c}/{c}_{i}.JPEG"] = jpeg(i)
    return write_tar(tmp_path / "imagenette2-160.tgz", files)


def test_imagenette_is_a_folder_eval_set_and_a_pretraining_root(tmp_path, imagenette_tgz):
    from selfsup.data.evalsets import build_eval_set

    root = tmp_path / "data"
    assert registry.prepare("imagenette", root, [imagenette_tgz], expected=IMAGENETTE_MINI, classes=IMAGENETTE_CLASSES).complete
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.JPEG")) == sorted(
        f"imagenette2/{s}/{c}/{c}_{i}.JPEG" for s, n in (("train", 2), ("val", 1)) for c in IMAGENETTE_CLASSES for i in range(n)
    )
    eval_set = build_eval_set("folder", root / "imagenette2")
    assert eval_set.num_classes == 2 and len(eval_set.make("val", None)) == 2


def test_imagenette_shortfall_names_the_missing_classes(tmp_path, imagenette_tgz, capsys):
    assert main(["prepare", "imagenette", "--root", str(tmp_path / "d"), "--source", str(imagenette_tgz)]) == 1
    out = capsys.readouterr().out
    assert "imagenette2/train has 4 of 9469 images; missing classes: n02979186, n03000684, n03028079" in out
    assert "imagenette2/val has 2 of 3925 images" in out


# --- Fashion-MNIST ------------------------------------------------------------------------------

FASHION_MINI = {"train": 6, "test": 4}


def idx_files(folder: Path, gz: bool) -> Path:
    """The four IDX files of a miniature (train 6, test 4 images), gzipped or not."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        images = struct.pack(">IIII", 2051, n, 28, 28) + rng.integers(0, 255, (n, 28, 28), np.uint8).tobytes()
        labels = struct.pack(">II", 2049, n) + (np.arange(n, dtype=np.uint8) % 10).tobytes()
        for name, data in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loads_in_torchvision_and_as_an_eval_set(tmp_path, gz):
    import torchvision

    from selfsup.data.evalsets import build_eval_set, eval_transform

    root = tmp_path / "data"
    assert registry.prepare("fashion-mnist", root, [idx_files(tmp_path / "src", gz)], expected=FASHION_MINI).complete
    assert sorted(p.name for p in (root / "FashionMNIST/raw").iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    ]  # fmt: skip
    train = torchvision.datasets.FashionMNIST(str(root), train=True)
    assert len(train) == 6 and [train[i][1] for i in range(6)] == [0, 1, 2, 3, 4, 5]

    eval_set = build_eval_set("fashion_mnist", root)
    assert eval_set.num_classes == 10
    val = eval_set.make("val", eval_transform(16))
    image, label = val[3]
    assert len(val) == 4 and label == 3 and image.shape == (3, 16, 16)
    assert eval_set.make("train", None)[0][0].mode == "RGB"


def test_fashion_mnist_eval_set_missing_names_the_prepare_command(tmp_path):
    from selfsup.data.evalsets import build_eval_set

    with pytest.raises(FileNotFoundError, match=r"python -m samdata prepare fashion-mnist --root"):
        build_eval_set("fashion_mnist", tmp_path).make("val", None)


def test_fashion_mnist_without_network_is_one_line_naming_the_url(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["prepare", "fashion-mnist", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "could not download http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz" in err
    assert "no network in this test" in err and "--source" in err and "dataset-fashion-mnist" in err


def test_fashion_mnist_wrong_or_short_files(tmp_path, capsys):
    src = idx_files(tmp_path / "src", gz=False)
    assert main(["prepare", "fashion-mnist", "--root", str(tmp_path / "d"), "--source", str(src)]) == 1
    out = capsys.readouterr().out
    assert "FashionMNIST/raw: train has 6 of 60000 images" in out and "FashionMNIST/raw: test has 4 of 10000 images" in out

    (src / "t10k-labels-idx1-ubyte").unlink()
    assert main(["prepare", "fashion-mnist", "--root", str(tmp_path / "e"), "--source", str(src)]) == 2
    assert f"no t10k-labels-idx1-ubyte[.gz] in --source {src}" in capsys.readouterr().err

    raw = tmp_path / "d/FashionMNIST/raw/train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:-5])
    assert registry.check("fashion-mnist", tmp_path / "d", expected=FASHION_MINI).shortfalls == [
        "FashionMNIST/raw: train has 0 of 6 images; train-images-idx3-ubyte: 4715 bytes where its header announces 4720"
    ]


# --- CIFAR-10 and STL10 -------------------------------------------------------------------------


def cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return pickle.dumps({"data": rng.integers(0, 255, (n, 3072), np.uint8), "labels": list(range(n)), "batch_label": "x"})


@pytest.fixture
def cifar_tgz(tmp_path):
    files = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch(2, i) for i in range(1, 6)}
    files["cifar-10-batches-py/test_batch"] = cifar_batch(3, 0)
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps({"label_names": [str(i) for i in range(10)]})
    return write_tar(tmp_path / "cifar-10-python.tar.gz", files)


def test_cifar10_counts_are_read_from_the_batches(tmp_path, cifar_tgz, capsys):
    root = tmp_path / "data"
    assert registry.prepare("cifar10", root, [cifar_tgz], expected={"train": 10, "test": 3}).complete
    assert sorted(p.name for p in (root / "cifar-10-batches-py").iterdir()) == sorted(
        ["batches.meta", "test_batch", *(f"data_batch_{i}" for i in range(1, 6))]
    )
    # torchvision checks each batch's MD5: a miniature cannot pass it, and the check says so.
    assert "torchvision.datasets.CIFAR10 will refuse them" in registry.check("cifar10", root, expected={"train": 10, "test": 3}, md5=True).shortfalls[0]

    (root / "cifar-10-batches-py/data_batch_4").unlink()
    assert main(["check", "cifar10", "--root", str(root)]) == 1
    assert "cifar-10-batches-py: train has 8 of 50000 images; missing files: data_batch_4" in capsys.readouterr().out


def test_stl10_counts_come_from_the_binaries(tmp_path, capsys):
    files = {
        "stl10_binary/train_X.bin": bytes(2 * 27648), "stl10_binary/train_y.bin": bytes(2),
        "stl10_binary/test_X.bin": bytes(3 * 27648), "stl10_binary/test_y.bin": bytes(3),
        "stl10_binary/unlabeled_X.bin": bytes(4 * 27648),
        "stl10_binary/class_names.txt": b"airplane\n", "stl10_binary/fold_indices.txt": b"0\n",
    }  # fmt: skip
    mini = {"train": 2, "test": 3, "unlabeled": 4}
    root = tmp_path / "data"
    assert registry.prepare("stl10", root, [write_tar(tmp_path / "stl10_binary.tar.gz", files)], expected=mini).complete
    (root / "stl10_binary/test_y.bin").write_bytes(bytes(2))
    assert registry.check("stl10", root, expected=mini).shortfalls == ["stl10_binary: test has 3 of 3 images; test_y.bin holds 2 labels for 3 images"]
    assert main(["check", "stl10", "--root", str(root)]) == 1
    assert "stl10_binary: unlabeled has 4 of 100000 images" in capsys.readouterr().out


# --- What every dataset shares: safe extraction, one-line user errors ---------------------------


@pytest.mark.parametrize(
    "member, kind",
    [
        ("../evil.JPEG", "zip"),
        ("imagenette2/train/n01440764/../../../../../evil.JPEG", "tgz"),
        ("/tmp/evil.JPEG", "tgz"),
        ("imagenette2/train/n01440764/link.JPEG", "symlink"),
    ],
)
def test_an_escaping_archive_member_is_refused(tmp_path, member, kind, capsys):
    good = {"imagenette2/train/n01440764/a.JPEG": jpeg(0)}
    if kind == "zip":
        archive = write_zip(tmp_path / "imagenette2.zip", {**good, member: b"x"})
    elif kind == "tgz":
        archive = write_tar(tmp_path / "imagenette2.tgz", {**good, member: b"x"})
    else:
        archive = tmp_path / "imagenette2.tgz"
        with tarfile.open(archive, "w:gz") as t:
            info = tarfile.TarInfo("imagenette2/train/n01440764/a.JPEG")
            info.size = 1
            t.addfile(info, io.BytesIO(b"x"))
            link = tarfile.TarInfo(member)
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            t.addfile(link)
    root = tmp_path / "deep" / "root"
    assert main(["prepare", "imagenette", "--root", str(root), "--source", str(archive)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("refusing this archive" in err) if kind != "symlink" else ("refused by tarfile's data filter" in err)
    assert not [p for p in tmp_path.rglob("*") if p.name in ("evil.JPEG", "link.JPEG")]


def test_user_errors_are_one_line(tmp_path, cityscapes_zips, imagenette_tgz, capsys):
    cases = [
        (["prepare", "imagenet", "--root", str(tmp_path)], "unknown dataset 'imagenet'; known: cityscapes, ade20k, imagenette, cifar10, stl10, fashion-mnist"),
        (["check", "coco", "--root", str(tmp_path)], "unknown dataset 'coco'; known: cityscapes"),
        (["prepare", "cityscapes", "--root", str(tmp_path / "r")], "download leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com/downloads/"),
        (["prepare", "cityscapes", "--root", str(tmp_path / "r"), "--source", str(tmp_path / "nope.zip")], "nope.zip: no such file or folder"),
        (["prepare", "cityscapes", "--root", str(tmp_path / "r"), "--source", str(imagenette_tgz)], "is not one of the expected sources (leftImg8bit_trainvaltest.zip; gtFine_trainvaltest.zip)"),
        (["prepare", "imagenette", "--root", str(tmp_path / "r"), "--source", str(cityscapes_zips[0]), "--semantic-as-instances"], "--semantic-as-instances applies to ade20k only"),
        (["prepare", "cityscapes", "--root", str(tmp_path / "r"), "--source", str(cityscapes_zips[1]), str(cityscapes_zips[1])], "two sources for gtFine_trainvaltest.zip"),
    ]
    (tmp_path / "not-an-archive.zip").write_bytes(b"hello")
    cases.append((["prepare", "cityscapes", "--root", str(tmp_path / "r"), "--source", str(tmp_path / "not-an-archive.zip")], "neither a zip archive, a tar archive nor a folder"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.startswith("error: ") and err.count("\n") == 1, (argv, err)


def test_an_extracted_folder_is_a_source_too(tmp_path, imagenette_tgz):
    extracted = tmp_path / "extracted"
    with tarfile.open(imagenette_tgz) as t:
        t.extractall(extracted, filter="data")
    root = tmp_path / "data"
    assert registry.prepare("imagenette", root, [extracted / "imagenette2-160"], expected=IMAGENETTE_MINI, classes=IMAGENETTE_CLASSES).complete
    assert len(list((root / "imagenette2").rglob("*.JPEG"))) == 6


def test_data_tools_import_neither_ray_nor_mlflow():
    import subprocess
    import sys

    code = "import sys, samdata.__main__; print(sorted(m for m in ('ray', 'mlflow', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


def _open_fds_to(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve())) if fds.is_dir() else 0


def test_a_zip_source_is_closed_after_each_use(tmp_path):
    from samdata.sources import open_source

    archive = write_zip(tmp_path / "a.zip", {"top/x.png": b"x", "top/y.png": b"y"})
    source = open_source(archive, "test")
    assert source.names() == ["top/x.png", "top/y.png"] and _open_fds_to(archive) == 0
    members = source.members(tmp_path)
    first = next(members)
    with first.open() as f:
        assert f.read() == b"x"
    members.close()  # an iteration ended early (an error, a break)
    assert _open_fds_to(archive) == 0
    assert [m.name for m in source.members(tmp_path)] == ["top/x.png", "top/y.png"]
    assert _open_fds_to(archive) == 0
