"""Shared fixtures: one tiny synthetic dataset per test session, written as ordinary files."""

from __future__ import annotations

import pytest

from selfsup.data.synthetic import SyntheticConfig, generate

TINY = SyntheticConfig(
    num_classes=4,
    scenes=48,
    scene_size=64,
    objects_per_scene=(2, 3),
    object_size=(20, 30),
    eval_size=32,
    eval_train_per_class=8,
    eval_val_per_class=4,
    clutter=12,
    seed=0,
)
TINY_MIN_AREA = 100


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), TINY)


def write_idx(folder, name: str, array) -> None:
    """An IDX file as Fashion-MNIST ships it (big-endian dims after a magic of type 0x08, ndim)."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (folder / name).write_bytes(header + array.tobytes())


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory):
    """A miniature Fashion-MNIST in torchvision's layout: per split and class a few 28x28 photos,
    each a bright blob whose pixel [0, 0] holds the photo's index in its split (so tests can tell
    which photos were used)."""
    import numpy as np

    root = tmp_path_factory.mktemp("fashion")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    yy, xx = np.mgrid[0:28, 0:28]
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = (np.arange(n) // 2) % 10  # each class has even and odd indices
        images = np.zeros((n, 28, 28), np.uint8)
        for i, label in enumerate(labels):
            half = 4 + label  # the class sets the blob's size
            images[i][(abs(yy - 14) <= half) & (abs(xx - 14) <= 12 - label // 2)] = 200
            images[i, 0, 0] = i
        write_idx(raw, f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw, f"{prefix}-labels-idx1-ubyte", labels)
    return root
