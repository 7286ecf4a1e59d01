"""Stage 1 on a real Ray Data pipeline: stores written, reused, resumed; broken images counted."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from masking.maskers import MaskerConfig, regions_of
from masking.store import ImageRegions, RegionStore, StoreWriter, store_file
from orchestrator.readable_images import masker_error, unreadable_images
from orchestrator.plan import Dataset, MaskJob
from orchestrator.region_stage import compute_store, pool_size
from samdata.image_files import list_images, load_rgb
from samdata.synthetic import generate
from tests.conftest import TINY, TINY_MIN_AREA

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenes(synthetic, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(synthetic.images, root)
    (root / "broken.png").write_bytes(b"\x89PNG truncated")
    return Dataset("scenes", root, synthetic.masks, tuple(list_images(root)))


@pytest.mark.slow  # a Ray Data pipeline
def test_store_is_computed_reused_and_counts_unreadable_images(ray_session, scenes, tmp_path):
    config = MaskerConfig("felzenszwalb", {}, min_area=TINY_MIN_AREA)
    job = MaskJob("scenes", "fz", config, store_file(tmp_path / "regions", "scenes", "fz", "fp1"))
    log = []
    store = compute_store(job, scenes, actors=4, actor_gpus=0, batch_size=4, log=log.append)
    assert len(store) == len(scenes.paths) and job.store.is_file()
    assert list(store.errors) == ["broken.png"]
    assert store.summary()["unreadable"] == 1 and store.summary()["regions_per_image"] > 1
    rel = scenes.paths[0]
    expected = regions_of(config.build(), config, np.asarray(load_rgb(scenes.images / rel)), rel)
    assert store[rel].regions.boxes.tolist() == expected.boxes.tolist()
    again = compute_store(job, scenes, actors=1, actor_gpus=0, batch_size=4, log=log.append)
    assert any("reusing" in line for line in log) and len(again) == len(store)


@pytest.mark.slow  # a Ray Data pipeline
def test_unreadable_images_are_read_from_the_store_not_decoded_again(ray_session, scenes, tmp_path):
    """The region stage decoded every image already: its store answers which are unreadable, and an
    image the masker failed on (readable) is not one of them. The answer is what decoding found.

    To see a second decode wherever it would happen (the driver, a Ray task, a thread), every readable
    image but the masker-failed one is then overwritten with as many zero bytes (the file list and its
    fingerprint stay the same): decoding them now would call them unreadable."""
    config = MaskerConfig("felzenszwalb", {}, min_area=TINY_MIN_AREA)
    job = MaskJob("scenes", "fz", config, store_file(tmp_path / "regions", "scenes", "fz", "fp3"))
    store = compute_store(job, scenes, actors=1, actor_gpus=0, batch_size=8, log=lambda _: None)
    decoded = unreadable_images(scenes, tmp_path / "decoded")  # no store: Ray tasks decode every image
    assert list(decoded) == ["broken.png"]
    masker_failed = scenes.paths[0]
    rows = [store[p] for p in scenes.paths]
    rows[0] = dataclasses.replace(rows[0], error=masker_error("fz", RuntimeError("CUDA out of memory")))

    overwritten = [p for p in scenes.paths if p not in decoded and p != masker_failed]
    for rel in overwritten:
        path = scenes.images / rel
        path.write_bytes(bytes(path.stat().st_size))
    assert len(unreadable_images(scenes, tmp_path / "decoded_again")) == len(overwritten) + 1  # what decoding says now
    found = unreadable_images(scenes, tmp_path / "from_store", [RegionStore(rows)])
    assert found == decoded and masker_failed not in found
    assert unreadable_images(scenes, tmp_path / "from_store") == decoded  # cached by the file list


@pytest.mark.slow  # a Ray Data pipeline
def test_interrupted_precompute_finishes_without_recomputing(ray_session, scenes, tmp_path):
    config = MaskerConfig("ground_truth", {"masks_root": str(scenes.masks)}, min_area=TINY_MIN_AREA)
    job = MaskJob("scenes", "gt", config, store_file(tmp_path / "regions", "scenes", "gt", "fp2"))
    masker = config.build()
    done = [p for p in scenes.paths if p != "broken.png"][:20]
    # what a killed run leaves: some shards, no store file
    StoreWriter(job.store).write_shard(
        [ImageRegions(p, 64, 64, regions_of(masker, config, np.asarray(load_rgb(scenes.images / p)), p)) for p in done]
    )
    log = []
    store = compute_store(job, scenes, actors=1, actor_gpus=0, batch_size=8, log=log.append)
    assert any(f"{len(done)} images done by an interrupted run, {len(scenes.paths) - len(done)} to go" in l for l in log)
    assert len(store) == len(scenes.paths) and not StoreWriter(job.store).parts.exists()


@pytest.mark.slow  # a Ray Data pipeline
def test_hqsam_masker_runs_inside_ray_data(ray_session, synthetic, tmp_path):
    root = tmp_path / "two"
    root.mkdir()
    for rel in list_images(synthetic.images)[:2]:
        shutil.copy(synthetic.images / rel, root / rel)
    dataset = Dataset("two", root, None, tuple(list_images(root)))
    params = {"model_type": "vit_tiny", "points_per_side": 2, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0,
              "device": "cpu", "dtype": "float32"}
    job = MaskJob("two", "hq", MaskerConfig("hqsam", params, min_area=20), store_file(tmp_path / "regions", "two", "hq", "fp3"))
    store = compute_store(job, dataset, actors=1, actor_gpus=0, batch_size=2, log=lambda _: None)
    assert len(store) == 2 and not store.errors
    for rel in dataset.paths:
        row = store[rel]
        assert (row.width, row.height) == (64, 64)
        assert (row.regions.areas >= 20).all()


def test_pool_leaves_a_cpu_for_reads_and_fits_the_gpus():
    assert pool_size(wanted=4, cluster_cpus=2, actor_gpus=0, cluster_gpus=0) == 1
    assert pool_size(wanted=4, cluster_cpus=16, actor_gpus=0, cluster_gpus=0) == 4
    assert pool_size(wanted=8, cluster_cpus=16, actor_gpus=0.5, cluster_gpus=2) == 4
    assert pool_size(wanted=8, cluster_cpus=16, actor_gpus=1, cluster_gpus=1) == 1
    assert pool_size(wanted=2, cluster_cpus=1, actor_gpus=0, cluster_gpus=0) == 1


PRECOMPUTE = """
import sys
from pathlib import Path

import ray

from masking.maskers import MaskerConfig
import orchestrator.readable_images
from orchestrator.readable_images import masker_error, unreadable_images
from orchestrator.plan import Dataset, MaskJob
from orchestrator.region_stage import compute_store
from samdata.image_files import list_images

root, store = Path(sys.argv[1]), Path(sys.argv[2])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
job = MaskJob("many", "fz", MaskerConfig("felzenszwalb", {}, min_area=100), store)
compute_store(job, Dataset("many", root, None, tuple(list_images(root))), actors=1, actor_gpus=0, batch_size=2)
"""


@pytest.mark.slow
def test_precompute_killed_mid_way_finishes_without_recomputing(ray_session, tmp_path):
    """SIGKILL the process computing a store (and its Ray) after a few shards; the store never reads
    as complete; the rerun computes only the images not yet written, with one row per image."""
    images = generate(tmp_path / "many", dataclasses.replace(TINY, scenes=160)).images
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    paths = tuple(list_images(images))
    config = MaskerConfig("felzenszwalb", {}, min_area=100)
    job = MaskJob("many", "fz", config, store_file(tmp_path / "regions", "many", "fz", "fp4"))
    parts = StoreWriter(job.store).parts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", PRECOMPUTE, str(images), str(job.store)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and len(list(parts.glob("*.parquet"))) < 2:
        time.sleep(0.02)
    assert proc.poll() is None, "the precompute ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    proc.wait()
    assert not job.store.exists()
    with pytest.raises(FileNotFoundError, match="never completed"):
        RegionStore.load(job.store)
    shards = {s.name: pq.read_table(s.local_path).column("path").to_pylist() for s in parts.glob("*.parquet")}
    done = [p for rows in shards.values() for p in rows]
    assert 0 < len(done) < len(paths) and len(set(done)) == len(done)
    log = []
    store = compute_store(job, Dataset("many", images, None, paths), actors=1, actor_gpus=0, batch_size=8, log=log.append)
    assert f"{len(done)} images done by an interrupted run, {len(paths) - len(done)} to go" in log[0]
    assert f"({len(paths) - len(done)} computed now, {len(done)} kept from an interrupted run, 0 duplicate rows dropped)" in log[-1]
    written = pq.read_table(job.store.local_path).column("path").to_pylist()
    assert sorted(written) == sorted(paths)  # every image once: none missing, none twice
    assert list(store.errors) == ["broken.jpg"] and len(store) == len(paths)
    for rel in (done[0], next(p for p in paths if p not in done and p != "broken.jpg")):
        expected = regions_of(config.build(), config, np.asarray(load_rgb(images / rel)), rel)
        assert store[rel].regions.boxes.tolist() == expected.boxes.tolist(), rel
    assert not parts.exists()


@pytest.mark.slow  # a Ray Data pipeline
def test_a_reused_store_computes_its_masker_failures_again(ray_session, scenes, tmp_path):
    """A masker error is never permanent: a complete store that holds one (say a CUDA out-of-memory
    of an earlier run) is reused for every other image, and that image is masked again."""
    config = MaskerConfig("ground_truth", {"masks_root": str(scenes.masks)}, min_area=TINY_MIN_AREA)
    job = MaskJob("scenes", "gt", config, store_file(tmp_path / "regions", "scenes", "gt", "fp4"))
    masker = config.build()
    readable = [p for p in scenes.paths if p != "broken.png"]
    rows = [ImageRegions(p, 64, 64, regions_of(masker, config, np.asarray(load_rgb(scenes.images / p)), p)) for p in readable]
    rows[0] = dataclasses.replace(rows[0], regions=rows[1].regions.__class__.empty(), error=masker_error("ground_truth", RuntimeError("CUDA out of memory")))
    rows.append(ImageRegions("broken.png", 0, 0, rows[1].regions.__class__.empty(), "UnidentifiedImageError: cannot identify"))
    writer = StoreWriter(job.store)
    writer.write_shard(rows)
    writer.finalize(scenes.paths)
    log = []
    store = compute_store(job, scenes, actors=1, actor_gpus=0, batch_size=8, log=log.append)
    assert any("computing again the 1 image(s) the masker failed on last time" in line for line in log)
    assert list(store.errors) == ["broken.png"]  # the decode error stays; the masker error is gone
    again = regions_of(masker, config, np.asarray(load_rgb(scenes.images / readable[0])), readable[0])
    assert store[readable[0]].regions.boxes.tolist() == again.boxes.tolist() and len(again) > 0
    assert len(RegionStore.load(job.store)) == len(scenes.paths)
