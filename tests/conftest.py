"""Shared fixtures: one tiny synthetic dataset per test session, written as ordinary files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdata.synthetic import SyntheticConfig, generate

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


UNREADABLE = ("truncated.jpg", "empty.png", "text.jpg")
"""What ``write_odd_images`` writes that no decoder can read."""


def _png16_rgb(path: Path, rgb: tuple[int, int, int], size: tuple[int, int]) -> None:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one), filled with ``rgb``."""
    w, h = size
    row = b"\x00" + np.tile(np.asarray(rgb, ">u2"), w).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * h)) + chunk(b"IEND", b""))


def write_odd_images(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Files a real photo folder holds: name -> (width, height) as RGB once read, None if unreadable.

    Readable: grayscale, palette, RGBA, 16-bit grayscale and RGB PNG, CMYK JPEG, a JPEG whose EXIF
    says 'rotate 90 degrees' (stored 60 x 40, seen 40 x 60), images smaller than any crop (5 x 3,
    1 x 1). Unreadable: a truncated JPEG, a zero-byte PNG, a text file named .jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)
    Image.fromarray(rgb[..., 0]).save(folder / "gray.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(np.dstack([rgb, np.full((40, 60), 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(np.full((40, 60), 40000, np.uint16)).save(folder / "gray16.png")
    _png16_rgb(folder / "rgb16.png", (65535, 0, 32896), (60, 40))
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees clockwise on display
    rotated.save(folder / "exif_rotated.jpg", exif=exif)
    Image.fromarray(rgb[:3, :5]).save(folder / "small.png")
    Image.fromarray(rgb[:1, :1]).save(folder / "one_pixel.png")
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, "JPEG")
    (folder / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image, whatever the name says")
    sizes: dict[str, tuple[int, int] | None] = {n: (60, 40) for n in ("gray.png", "palette.png", "rgba.png", "gray16.png", "rgb16.png", "cmyk.jpg")}
    sizes.update({"exif_rotated.jpg": (40, 60), "small.png": (5, 3), "one_pixel.png": (1, 1)})
    sizes.update({name: None for name in UNREADABLE})
    return sizes


@pytest.fixture(scope="session")
def boxes(synthetic):
    """Image path -> ground-truth region boxes of the synthetic scenes (as the region stage makes them)."""
    from masking.maskers import MaskerConfig, regions_of
    from samdata.image_files import list_images, load_rgb

    config = MaskerConfig("ground_truth", {"masks_root": str(synthetic.masks)}, min_area=TINY_MIN_AREA)
    masker = config.build()
    return {
        rel: regions_of(masker, config, np.asarray(load_rgb(synthetic.images / rel)), rel).boxes
        for rel in list_images(synthetic.images)
    }
