"""``input: gpu``: one image cache per node, shared by the trials on it through Ray's object store.

Without this, every ``input: gpu`` trial decodes its dataset into its own ``ImageCache``
(``selfsup.training.Pretraining``): four trials packed on one machine hold four copies in host
memory (ImageNette at the default ``cache_scale``: ~1.4 GB each) and decode every image four times.

With ``resources.shared_image_cache`` (default on), the driver builds each distinct cache once,
before Tune starts (one per image folder, image list and short side among the sweep's
``input: gpu`` trials; ``cache_key``), puts it in Ray's object store and drops its own copy. The
trainable receives a dict key -> ``ObjectRef`` through ``tune.with_parameters`` (Ray's documented
way to hand large objects to trials, Ray Tune FAQ / API ``ray.tune.with_parameters``); a trial
fetches only its own cache's ref. Ray deserialises numpy arrays zero-copy from its shared-memory
object store (Ray docs, "Serialization: numpy arrays"), so every trial on a node reads the one
copy in place, read-only; a node running none of a cache's trials never receives it, a node
running some pulls one copy that its trials share.

- A trial that Tune restarts (a lost worker or node) gets the same ref and reads the copy of the
  node it now runs on, pulled there once if that node has none yet.
- ``--resume``: the driver builds the caches again (one decode pass, as a new sweep) and hands them
  to the restored trials; the objects of the stopped run died with its driver.
- If the cache cannot be fetched (its object lost with its owner) or is not the trial's own (a bug),
  the trial warns and decodes its own (``selfsup.training.Pretraining``), so it still trains.
- The objects live as long as the driver's Ray session: ``tune.with_parameters`` keeps its
  registry (and so the refs) for the life of the process.
- On a CUDA device each trial still copies the cache into its own GPU memory (packed trials hold
  one device copy each, in their memory share); what is shared is the host copy and the decode.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from samdata.storage import location
from orchestrator.frozen import is_frozen
from selfsup.config import TrainConfig
from selfsup.data.image_cache import ImageCache
from selfsup.training import cache_short_side


def cache_key(images: str, image_list_sha256: str, train: TrainConfig) -> str:
    """What decides a trial's cache: its image folder, its image list (by checksum) and the short side."""
    return f"{images}|{image_list_sha256}|{cache_short_side(train)}"


def uses_image_cache(train: TrainConfig) -> bool:
    """Whether a trial builds an image cache: it trains (a frozen encoder does not) with ``input: gpu``."""
    return train.input == "gpu" and not is_frozen(train)


@dataclass
class PlannedCache:
    """One cache the driver builds: from ``images`` (a folder), the list in ``image_list``, at ``short_side``."""

    dataset: str
    images: str
    image_list: str
    short_side: int
    trials: list[str] = field(default_factory=list)


def planned_caches(plan, lists: dict[str, tuple[str, str]]) -> dict[str, PlannedCache]:
    """Key -> the cache of the plan's ``input: gpu`` trials with that key (each built once).
    ``lists``: dataset -> (image list file, its sha256), the lists the trials read
    (``orchestrator.sweep.write_image_lists``)."""
    out: dict[str, PlannedCache] = {}
    for trial in plan.trials:
        if uses_image_cache(trial.train):
            file, sha = lists[trial.dataset]
            images = str(plan.datasets[trial.dataset].images)
            cache = out.setdefault(cache_key(images, sha, trial.train), PlannedCache(trial.dataset, images, file, cache_short_side(trial.train)))
            cache.trials.append(trial.key)
    return out


def put_image_caches(plan, lists: dict[str, tuple[str, str]], log=print) -> dict[str, Any]:
    """Build each of ``planned_caches`` once and put it in Ray's object store; key -> ObjectRef.
    Needs Ray to be up. The driver keeps no copy. Ray spills what its object store cannot hold to
    disk; should the put fail anyway, a warning, and that cache's trials decode their own."""
    import ray

    refs = {}
    for key, planned in planned_caches(plan, lists).items():
        start = time.perf_counter()
        cache = ImageCache.build(planned.images, json.loads(location(planned.image_list).read_bytes()), planned.short_side)
        mb = cache.nbytes / 2**20
        try:
            refs[key] = ray.put(cache)
        except ray.exceptions.ObjectStoreFullError as err:
            log(f"warning: image cache of {planned.dataset} ({mb:.0f} MB) does not fit in Ray's object store; its trials decode their own ({err})")
            continue
        finally:
            del cache  # the object store holds it now: the driver keeps no copy
        log(
            f"image cache: {planned.dataset} at {planned.short_side} px short side, {mb:.1f} MB, built once in "
            f"{time.perf_counter() - start:.1f} s for {len(planned.trials)} trial(s), shared per node through Ray's object store"
        )
    return refs


def shared_image_cache(spec: dict[str, Any], train: TrainConfig, refs: dict[str, Any] | None) -> ImageCache | None:
    """In a trial (``spec``, its ``train`` settings): its cache from the object store (read-only
    pixels, read in place), or None when the sweep shares none for it (the trial then decodes its own)."""
    ref = (refs or {}).get(cache_key(spec["images"], spec["image_list_sha256"], train))
    if ref is None:
        return None
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:
        warnings.warn(f"trial {spec['key']}: the shared image cache could not be read ({err}); decoding its own", stacklevel=2)
        return None
