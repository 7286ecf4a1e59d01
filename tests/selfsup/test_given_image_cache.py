"""``input: gpu`` with a cache built beforehand (a sweep shares one per node through Ray's object
store): used as it is when it is the run's own, refused with a warning (and rebuilt) when not."""

import hashlib
import math
import shutil
import warnings

import numpy as np
import pytest

from samdata.image_files import list_images
from selfsup.config import EvalConfig, TrainConfig
from selfsup.data.image_cache import ImageCache
from selfsup.training import Pretraining, cache_short_side

TRAIN = TrainConfig(method="simclr", epochs=1, batch_size=16, image_size=32, backbone_width=8, stem="cifar",
                    workers=0, input="gpu", device="cpu")
EVAL = EvalConfig(every=100, linear_epochs=0)


@pytest.fixture
def images(synthetic, tmp_path):
    """A copy of the synthetic scenes that a test may delete, and its image list."""
    root = tmp_path / "images"
    shutil.copytree(synthetic.images, root)
    return root, list_images(root)


def read_only(cache: ImageCache) -> ImageCache:
    """The cache as a trial gets it from Ray's object store: pixels not writable."""
    cache.pixels.setflags(write=False)
    return cache


def test_cache_short_side_is_cache_scale_times_the_largest_view():
    assert cache_short_side(TRAIN) == math.ceil(1.5 * 32)
    assert cache_short_side(TrainConfig(method="dino", image_size=64, cache_scale=2.0)) == 128  # global views are the largest


def test_run_given_its_cache_trains_without_reading_an_image_or_writing_the_cache(images):
    root, paths = images
    cache = read_only(ImageCache.build(root, paths, cache_short_side(TRAIN)))
    before = hashlib.sha256(cache.pixels.tobytes()).hexdigest()
    shutil.rmtree(root)  # any decode from now on fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Pretraining(TRAIN, EVAL, root, paths=paths, image_cache=cache)
        history = run.fit()
    assert [m["epoch"] for m in history] == [1] and math.isfinite(history[0]["train/loss"])
    assert not [w for w in caught if "writable" in str(w.message) or "image cache" in str(w.message)]
    assert run.device_images.pixels.data_ptr() == cache.pixels.ctypes.data  # read in place on a CPU device, no copy
    assert hashlib.sha256(cache.pixels.tobytes()).hexdigest() == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("short_side", "short side is 56 px, this run needs 48 px"),
        ("paths", "another list of images"),
        ("root", "built from"),
    ],
)
def test_a_cache_built_for_something_else_is_not_used_and_the_run_builds_its_own(images, tmp_path, change, reason):
    root, paths = images
    side = cache_short_side(TRAIN)
    if change == "root":
        other = tmp_path / "other"
        shutil.copytree(root, other)
        given = ImageCache.build(other, paths, side)
    else:
        given = ImageCache.build(root, paths[:-1] if change == "paths" else paths, side + 8 if change == "short_side" else side)
    assert given.mismatch(root, paths, side) is not None
    with pytest.warns(UserWarning, match=f"not this run's.*{reason}.*building its own"):
        run = Pretraining(TRAIN, EVAL, root, paths=paths, image_cache=read_only(given))
    assert run.device_images.pixels.data_ptr() != given.pixels.ctypes.data
    own = ImageCache.build(root, paths, side)
    assert own.mismatch(root, paths, side) is None
    assert run.dataset.cache.paths == own.paths and np.array_equal(run.device_images.pixels.numpy(), own.pixels)
