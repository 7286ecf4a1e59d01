"""Every arm of a dataset trains on one image list, fixed at planning; masker failures are retried,
and an image a masker still fails on is left out of every arm of its dataset, counted and named."""

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

from masking.maskers import MaskerConfig, Proposals
from masking.regions import Regions
from masking.store import ImageRegions, RegionStore
from orchestrator.readable_images import masker_error
from orchestrator.region_stage import mask_batch, masker_failures
from orchestrator.summary import skipped_markdown
from orchestrator.sweep import left_out, training_images, write_image_lists
from orchestrator.trial import training_images as trial_images
from samdata.storage import location


class Flaky:
    """A masker that runs out of GPU memory the first ``fails`` times it sees image ``bad``."""

    def __init__(self, bad: str, fails: int):
        self.bad, self.fails, self.calls = bad, fails, 0

    def __call__(self, image: np.ndarray, path: str) -> Proposals:
        self.calls += 1
        if path == self.bad and self.fails > 0:
            self.fails -= 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        mask = np.zeros(image.shape[:2], bool)
        mask[:8, :8] = True
        return Proposals(mask[None], np.ones(1, np.float32))


def test_a_transient_masker_failure_is_retried_not_stored():
    config = MaskerConfig("felzenszwalb", {}, min_area=1)
    images = [np.zeros((16, 16, 3), np.uint8)] * 3
    regions, errors = mask_batch(Flaky("b", fails=2), config, images, ["a", "b", "c"])
    assert errors == ["", "", ""] and all(len(r) == 1 for r in regions)
    regions, errors = mask_batch(Flaky("b", fails=10), config, images, ["a", "b", "c"], tries=3)
    assert errors[0] == errors[2] == "" and errors[1].startswith("masker felzenszwalb: RuntimeError: CUDA out of memory")


def _row(path: str, error: str | None = None) -> ImageRegions:
    return ImageRegions(path, 16, 16, Regions.empty(), error)


def test_masker_failures_leave_every_arm_of_the_dataset_and_are_counted():
    paths = ("a.png", "b.png", "c.png", "d.png")
    fails_b = RegionStore([_row("a.png"), _row("b.png", masker_error("hqsam", RuntimeError("too small"))), _row("c.png"), _row("d.png", "OSError: truncated")])
    fails_c = RegionStore([_row("a.png"), _row("b.png"), _row("c.png", masker_error("felzenszwalb", ValueError("x"))), _row("d.png", "OSError: truncated")])
    assert masker_failures(fails_b) == ["b.png"]
    skipped = {"scenes": left_out("scenes", {"d.png": "OSError: truncated"}, [fails_b, fails_c])}
    assert list(skipped["scenes"]) == ["b.png", "c.png", "d.png"]
    plan = SimpleNamespace(datasets={"scenes": SimpleNamespace(paths=paths)})
    # the random arm (no store), the hqsam arm and the felzenszwalb arm all get this one list
    assert training_images(plan, skipped) == {"scenes": ["a.png"]}
    text = skipped_markdown(skipped)
    assert "3 pretraining images were left out of every trial of their dataset: 1 unreadable, 2 a masker failed on" in text


def test_trials_train_on_the_planned_list_not_the_folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        (images / name).write_bytes(b"")
    lists = write_image_lists(location(tmp_path / "run"), {"scenes": ["a.png", "b.png"]})
    file, sha = lists["scenes"]
    spec = {"key": "simclr", "images": str(images), "image_list": file, "image_list_sha256": sha}
    (images / "new.png").write_bytes(b"")  # added after planning: no trial sees it
    assert trial_images(spec) == ["a.png", "b.png"]
    assert sha == hashlib.sha256(json.dumps(["a.png", "b.png"]).encode()).hexdigest()
    (tmp_path / "run" / "images" / "scenes.json").write_text(json.dumps(["a.png"]))
    with pytest.raises(RuntimeError, match="image list .* changed since the sweep was planned"):
        trial_images(spec)
