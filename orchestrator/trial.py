"""Stage 2: one Ray Tune trial = one ``selfsup`` pretraining run, checkpointed every epoch.

The trial restores from Tune's last checkpoint when Tune restarts it (a dead worker, a resumed
sweep), reports every epoch to Tune with a checkpoint, and logs to its own MLflow child run. An
epoch already in MLflow is not logged twice, and epochs a restored checkpoint knows but MLflow
missed are logged from the checkpoint's history, so the curves have every epoch exactly once.

Packing: with ``resources.gpu`` < 1 several trials share one GPU. Ray's fractional GPUs are
bookkeeping only, so each trial caps its own CUDA allocator at its share of the GPU's memory
(``gpu_memory_share``); the CUDA context (a few hundred MB per process) comes on top. Each trial
tags its MLflow run with the Ray node it ran on (``node_id``) and, when it restarted from a
checkpoint, with that checkpoint's epoch (``restored_from_epoch``). An ``input: gpu`` trial reads
its image cache from Ray's object store, one copy per node (``orchestrator.shared_caches``), and
tags its run ``image_cache``: ``shared`` or ``own``. A ``frozen`` trial evaluates a
frozen encoder instead of training (``selfsup.frozen``): one epoch, one point, the same checkpoints.

Each checkpoint also holds ``history.json`` (``orchestrator.trial_histories``: the run id, the
planned epochs, every epoch's metrics so far): while the tracking server is unreachable the trial
trains on, and the driver logs from these files whatever MLflow is still missing at the end of the
sweep. This module runs in the trial's worker; the driver reads the histories.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from samdata.storage import location
from masking.store import RegionStore
from orchestrator.frozen import is_frozen
from orchestrator.shared_caches import shared_image_cache, uses_image_cache
from orchestrator.tracking import TrackingError, TrialTracker, log_files, set_tag
from orchestrator.trial_histories import HISTORY, history_json
from selfsup.backbone import export_backbone
from selfsup.config import EvalConfig, TrainConfig
from selfsup.data.evalsets import build_eval_set
from selfsup.frozen import FrozenEvaluation
from selfsup.training import Pretraining

CHECKPOINT = "state.pt"
BACKBONE_FOLDER = "backbone"
"""Where a finished trial's backbone lands in its MLflow run (``selfsup.backbone.export_backbone``)."""
NODE_TAG = "node_id"
RESTORED_TAG = "restored_from_epoch"
"""Set when a trial restarts from a checkpoint (a lost worker or node, a resumed sweep): its epoch."""
IMAGE_CACHE_TAG = "image_cache"
"""``input: gpu`` trials: ``shared`` (read from Ray's object store, ``orchestrator.shared_caches``) or
``own`` (decoded by the trial: sharing off, or the shared cache unreadable or not the trial's)."""


def gpu_memory_share(gpu: float) -> float | None:
    """The fraction of one GPU's memory a trial asking for ``gpu`` GPUs may use: its share when it
    packs with others on one GPU (0 < gpu < 1), None (no cap) for whole GPUs or none."""
    return float(gpu) if 0 < gpu < 1 else None


def cap_gpu_memory(share: float | None) -> bool:
    """Cap this process's CUDA allocator at ``share`` of the GPU's memory; a no-op without CUDA
    (CPU machines, or fake GPUs of a simulated cluster). True when a cap was set."""
    if share is None or not torch.cuda.is_available():
        return False
    torch.cuda.set_per_process_memory_fraction(share)
    return True


def training_images(spec: dict[str, Any]) -> list[str]:
    """The images this trial trains on: its dataset's list, fixed when the sweep was planned and
    shared by every trial of the dataset (``orchestrator.sweep.write_image_lists``), never the folder
    listed again (images added since would get no regions). A list that changed since is an error."""
    data = location(spec["image_list"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != spec["image_list_sha256"]:
        raise RuntimeError(f"trial {spec['key']}: the image list {spec['image_list']} changed since the sweep was planned")
    return json.loads(data)


def run_trial(config: dict[str, Any], image_caches: dict[str, Any] | None = None) -> None:
    """Tune's trainable. ``config["trial"]`` holds plain values made by ``orchestrator.sweep``;
    ``image_caches`` (given by ``tune.with_parameters``): cache key -> ObjectRef of the image
    caches the sweep shares (``orchestrator.shared_caches``)."""
    import ray
    from ray import tune

    spec = config["trial"]
    torch.set_num_threads(max(1, int(spec["cpus"])))
    cap_gpu_memory(spec.get("gpu_memory_share"))
    store = RegionStore.load(spec["store"], spec.get("min_area")) if spec["store"] else None
    paths = training_images(spec)
    eval_sets = [build_eval_set(e["kind"], e["root"], e["name"], e["download"]) for e in spec["eval_sets"]]
    train = TrainConfig(**spec["train"])
    cache_tag = None
    shares_cache = uses_image_cache(train)
    if is_frozen(train):  # a frozen encoder: evaluated once, no training (orchestrator.frozen)
        trainer: Pretraining | FrozenEvaluation = FrozenEvaluation(train, EvalConfig(**spec["eval"]), eval_sets)
    else:
        trainer = Pretraining(
            train,
            EvalConfig(**spec["eval"]),
            spec["images"],
            eval_sets,
            boxes_of=store.boxes if store is not None else None,
            paths=paths,
            image_cache=shared_image_cache(spec, train, image_caches) if shares_cache else None,
        )
        if shares_cache:
            cache_tag = "shared" if trainer.used_given_cache else "own"
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.restore(Path(folder) / CHECKPOINT)
    tracker = TrialTracker(spec["tracking_uri"], spec["run_id"])
    try:
        set_tag(spec["tracking_uri"], spec["run_id"], NODE_TAG, ray.get_runtime_context().get_node_id())
        if checkpoint is not None:
            set_tag(spec["tracking_uri"], spec["run_id"], RESTORED_TAG, str(trainer.epoch))
        if cache_tag is not None:
            set_tag(spec["tracking_uri"], spec["run_id"], IMAGE_CACHE_TAG, cache_tag)
    except TrackingError:
        pass  # where it ran is good to know, not worth failing a trial for
    tracker.log_history(trainer.history)  # epochs the checkpoint has and MLflow may have missed

    def on_epoch(metrics: dict[str, float], run: Pretraining | FrozenEvaluation) -> None:
        tracker.log_epoch(metrics)
        with tempfile.TemporaryDirectory() as folder:
            run.save(Path(folder) / CHECKPOINT)
            (Path(folder) / HISTORY).write_text(history_json(spec["run_id"], run.cfg.epochs, run.history))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    try:
        trainer.fit(on_epoch)
    except BaseException:
        tracker.finish("FAILED")
        raise
    if trainer.trained_backbone is not None:  # a frozen encoder trained none
        log_backbone(spec, trainer)
    tracker.finish("FINISHED")


def log_backbone(spec: dict[str, Any], trainer: Pretraining) -> None:
    """The trained backbone and its settings as artifacts of the trial's run (not every epoch's
    checkpoint: those stay in the trial's folder). A tracking failure does not fail the trial: the
    last checkpoint holds the same weights."""
    files = export_backbone(trainer.trained_backbone, trainer.cfg.backbone_width, trainer.cfg.stem)
    try:
        log_files(spec["tracking_uri"], spec["run_id"], files, BACKBONE_FOLDER)
    except TrackingError as err:
        warnings.warn(f"trial {spec['key']}: backbone not logged to MLflow ({err}); its last checkpoint holds the weights", stacklevel=2)
