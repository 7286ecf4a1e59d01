"""Stage 1: region stores, computed once per (dataset, masker configuration) with Ray Data.

Images are decoded by Ray Data tasks (CPU), then masked by a pool of actors, each building its
masker once in its constructor (HQ-SAM: one model per actor, ``num_gpus`` per actor from the
sweep file). Results stream back to the driver, which writes them as store shards as they come:
a killed precompute loses at most the rows in flight, and a rerun skips every image already in a
shard. Unreadable images become rows with an error message: counted and reported, never fatal.

Only a decode error is permanent. Any exception a masker raises on a readable image (a CUDA
out-of-memory, a driver hiccup, a bug) is tried again, image by image, ``MASKER_TRIES`` times with
the CUDA cache emptied in between; one that still fails is written as a masker error so that the
store can complete, but a complete store's masker errors are computed again whenever the store is
reused (``compute_store``), so a transient failure never sticks to an image.

Ray Data hangs when its actors hold every CPU (ray#44687), so the pool always leaves one CPU
free for the read and decode tasks. On a cluster Ray Data spreads the actors over the nodes; the store
records which nodes masked how many images (its ``nodes`` metadata), and the log says so.

Every decode task's and masker actor's process imports this module first, so it imports neither
``orchestrator.plan`` nor ``orchestrator.config`` (they load selfsup and torch: about 4 s per
process on a CPU core, measured) at run time; tests/test_layering.py checks it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from masking.maskers import MaskerConfig, regions_of_batch
from masking.regions import Regions
from masking.store import ImageRegions, RegionStore, StoreWriter
from orchestrator.console import detail, store_progress
from orchestrator.readable_images import MASKER_ERROR, error_line, masker_error
from samdata.image_files import load_rgb

if TYPE_CHECKING:  # not at run time: every decode task's and masker actor's process imports this
    # module, and orchestrator.plan loads selfsup and torch, seconds per process (tests/test_layering.py)
    from orchestrator.plan import Dataset, MaskJob


def decode_images(batch: dict[str, np.ndarray], root: str) -> dict[str, Any]:
    """Ray Data task: read each image as RGB uint8; an unreadable one gets an error instead."""
    images, errors = [], []
    for path in batch["path"]:
        try:
            images.append(np.asarray(load_rgb(Path(root) / path)))
            errors.append("")
        except Exception as err:  # noqa: BLE001 - any broken file is reported, not fatal
            images.append(np.zeros((1, 1, 3), np.uint8))
            errors.append(error_line(err))
    return {"path": list(batch["path"]), "image": images, "error": errors}


MASKER_TRIES = 3
"""Tries per image before a masker's exception is written to the store (as a retryable masker error)."""


def _free_gpu_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort before a retry
        pass


def mask_batch(masker, config: MaskerConfig, images: list[np.ndarray], paths: list[str], tries: int = MASKER_TRIES) -> tuple[list[Regions], list[str]]:
    """Regions of each image and '' (or the masker's error after ``tries`` tries on that image alone):
    the whole batch once, then each image of a failed batch on its own, tried again on any exception."""
    try:
        return regions_of_batch(masker, config, images, paths), [""] * len(paths)
    except Exception:  # noqa: BLE001 - find the image the masker fails on, report it, go on
        pass
    regions, errors = [Regions.empty()] * len(paths), [""] * len(paths)
    for i in range(len(paths)):
        for attempt in range(tries):
            _free_gpu_memory()
            try:
                regions[i] = regions_of_batch(masker, config, [images[i]], [paths[i]])[0]
                errors[i] = ""
                break
            except Exception as err:  # noqa: BLE001
                errors[i] = masker_error(config.name, err)
    return regions, errors


def masker_failures(store: RegionStore) -> list[str]:
    """Images of a store the masker failed on (readable ones): computed again when it is reused."""
    return sorted(p for p, e in store.errors.items() if e.startswith(MASKER_ERROR))


class MaskerActor:
    """Ray Data actor: builds the masker once, then turns decoded images into regions."""

    def __init__(self, masker: dict[str, Any]):
        import ray

        self.config = MaskerConfig(**masker)
        self.masker = self.config.build()
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        paths = [str(p) for p in batch["path"]]
        images = [np.asarray(i) for i in batch["image"]]
        errors = [str(e) for e in batch["error"]]
        readable = [i for i, e in enumerate(errors) if not e]
        regions = [Regions.empty()] * len(paths)
        found, failed = mask_batch(self.masker, self.config, [images[i] for i in readable], [paths[i] for i in readable])
        for i, r, e in zip(readable, found, failed):
            regions[i], errors[i] = r, e
        return {
            "path": paths,
            "width": [0 if e else im.shape[1] for im, e in zip(images, errors)],
            "height": [0 if e else im.shape[0] for im, e in zip(images, errors)],
            "regions": [regions_json(r) for r in regions],
            "error": errors,
            "node": [self.node] * len(paths),
        }


def regions_json(regions: Regions) -> str:
    """An image's regions as they travel from a masker actor to the driver (one JSON string)."""
    out = {"boxes": regions.boxes.tolist(), "areas": regions.areas.tolist(), "scores": regions.scores.tolist()}
    if regions.rle is not None:
        out["rle"] = regions.rle
    return json.dumps(out)


def _row(record: dict[str, Any]) -> ImageRegions:
    r = json.loads(record["regions"])
    regions = Regions(
        np.asarray(r["boxes"], np.int32).reshape(-1, 4), np.asarray(r["areas"], np.int64), np.asarray(r["scores"], np.float32), r.get("rle")
    )
    return ImageRegions(str(record["path"]), int(record["width"]), int(record["height"]), regions, record["error"] or None)


def pool_size(wanted: int, cluster_cpus: float, actor_gpus: float, cluster_gpus: float) -> int:
    """Actors to start: as many as asked, leaving one CPU for reads, within the GPUs there are."""
    size = min(wanted, max(1, int(cluster_cpus) - 1))
    if actor_gpus > 0:
        size = min(size, max(1, int(cluster_gpus / actor_gpus)))
    return size


def compute_store(job: MaskJob, dataset: Dataset, actors: int, actor_gpus: float, batch_size: int, log=print) -> RegionStore:
    """Build (or finish) the region store of ``job``; reuse it when it is already complete."""
    import ray

    base = RegionStore.load(job.store, masks=job.config.keep_masks) if job.store.is_file() else None
    retry = masker_failures(base) if base is not None else []
    if base is not None and not retry:
        log(f"regions {job.label}: reusing {job.store}")
        return base
    writer = StoreWriter(job.store)
    done = writer.done()
    todo = [p for p in (retry if base is not None else dataset.paths) if p not in done]
    if base is not None:
        log(f"regions {job.label}: reusing {job.store}, computing again the {len(retry)} image(s) the masker failed on last time")
    if done:
        log(f"regions {job.label}: {len(done)} images done by an interrupted run, {len(todo)} to go")
    nodes: Counter[str] = Counter()
    written = len(done)
    if todo:
        resources = ray.cluster_resources()
        size = pool_size(actors, resources.get("CPU", 1), actor_gpus, resources.get("GPU", 0))
        actor_cpus = 1.0 if resources.get("CPU", 1) >= 2 else 0.5
        detail(log, f"regions {job.label}: {job.config.name} on {len(todo)} images with {size} actor(s)")
        progress = store_progress(job.label, written, len(dataset.paths), log)
        ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, min(len(todo) // batch_size, 64)))
        ds = ds.map_batches(decode_images, fn_kwargs={"root": str(dataset.images)}, batch_size=batch_size, num_cpus=0.5)
        ds = ds.map_batches(
            MaskerActor,
            fn_constructor_kwargs={"masker": {**job.config.as_dict()}},
            batch_size=batch_size,
            num_cpus=actor_cpus,
            num_gpus=actor_gpus,
            compute=ray.data.ActorPoolStrategy(size=size),  # placed SPREAD over nodes (Ray Data's default)
        )
        buffer: list[ImageRegions] = []
        for record in ds.iter_rows():
            buffer.append(_row(record))
            nodes[record["node"]] += 1
            if len(buffer) >= 4 * batch_size:  # a shard: at most this many rows are lost by a crash
                writer.write_shard(buffer)
                written += len(buffer)
                buffer = []
                progress.update(written)
        writer.write_shard(buffer)
        written += len(buffer)
    if base is not None:
        nodes.update(json.loads(base.metadata.get("nodes", "{}")))
    masker = json.dumps(job.config.as_dict(), sort_keys=True, default=str)  # provenance, e.g. the checkpoint a later round's masker read
    store = writer.finalize(dataset.paths, {"nodes": json.dumps(dict(nodes)), "masker": masker}, base=base)
    if nodes:
        detail(log, f"regions {job.label}: masked on {len(nodes)} node(s): " + ", ".join(f"{n[:8]} {k} images" for n, k in nodes.most_common()))
    summary = store.summary()
    log(
        f"regions {job.label}: {summary['images']} images, {summary['regions_per_image']:.2f} regions/image, "
        f"{summary['images_without_region']} without a region, {summary['unreadable']} unreadable -> {job.store}"
        f" ({written - len(done)} computed now, {len(done)} kept from an interrupted run, "
        f"{writer.duplicates} duplicate rows dropped)"
    )
    return store

