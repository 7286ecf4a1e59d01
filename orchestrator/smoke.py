"""``--smoke``: the same sweep shrunk to tiny synthetic data and one epoch, to check it end to end.

Every method, masker and eval set, and every grid axis but those over the sizes set here (``epochs``,
``image_size``, ``batch_size``, the ``eval.*`` sizes, ``maskers.*.min_area``, HQ-SAM's point grid and
thresholds), keeps its place; only the data and the sizes shrink:
each pretraining set becomes a few synthetic scenes (with instance masks, so ``ground_truth``
still works), each eval set the scenes' single-object set, HQ-SAM runs vit_tiny with random
weights on a 2 x 2 point grid on the CPU (other maskers keep their parameters: a ``features``
masker its checkpoint, a file or a trial of the sweep), and training runs one epoch of a tiny backbone. Frozen
encoders get random weights and small inputs (``orchestrator.frozen.smoke_encoders``).
Runs go to ``<storage>/smoke``; the scenes to ``<storage>/smoke/data``, or, when the storage is
not a local folder (``s3://``...), to ``smoke-data/`` in the working directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from samdata.storage import location
from orchestrator.config import FILLED_BY_THE_PLAN, DatasetSpec, EvalSetSpec, MaskerSpec, SweepConfig
from orchestrator.frozen import smoke_encoders
from orchestrator.setting_axes import EVAL, MASKERS

# 4 scenes: one batch of the smoke batch size (4). Each scene costs HQ-SAM's full image encoder (vit_tiny
# at 1024 px: about 4 s per image on one CPU thread, measured here), the largest part of a smoke sweep.
SMOKE_SCENES = {"scenes": 4, "scene_size": 64, "object_size": [20, 30], "objects_per_scene": [2, 3], "eval_size": 32,
                "num_classes": 4, "eval_train_per_class": 4, "eval_val_per_class": 2, "clutter": 8}
SMOKE_HQSAM = {"model_type": "vit_tiny", "points_per_side": 2, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0,
               "device": "cpu", "dtype": "float32"}


def smoke_sweep(sweep: SweepConfig) -> SweepConfig:
    storage = location(sweep.storage) / "smoke"
    data = storage.local_path / "data" if storage.local_path else Path("smoke-data").resolve()
    datasets = {name: DatasetSpec(root=str(data / name), synthetic=SMOKE_SCENES) for name in sweep.datasets}
    first = next(iter(datasets))
    eval_sets = {name: EvalSetSpec(dataset=first) for name in sweep.eval.sets}
    maskers = {
        name: MaskerSpec(
            name=m.name, min_area=50, containment=m.containment, keep_masks=m.keep_masks,
            params=SMOKE_HQSAM if m.name == "hqsam" else {k: v for k, v in m.params.items() if k not in FILLED_BY_THE_PLAN.get(m.name, ())},
        )  # a ground-truth masker's masks_root is the smoke scenes', as the plan fills it in
        for name, m in sweep.maskers.items()
    }
    eval_settings = {"every": 1, "knn_k": 5, "linear_epochs": 1, "batch_size": 16, "linear_batch_size": 16, "image_size": None}
    shrunk = {"epochs", "image_size", "batch_size", *(f"{EVAL}.{k}" for k in eval_settings)}
    shrunk |= {f"{MASKERS}.{name}.min_area" for name in maskers}
    shrunk |= {f"{MASKERS}.{name}.params.{k}" for name, m in maskers.items() if m.name == "hqsam" for k in SMOKE_HQSAM}
    grid = {k: v for k, v in sweep.grid.items() if k not in shrunk}  # the sizes set here, not the axes' values
    train = dataclasses.replace(
        sweep.train, epochs=1, batch_size=4, image_size=32, backbone_width=8, stem="cifar", workers=0, device="cpu", warmup_epochs=0
    )
    evaluation = sweep.eval.model_copy(update={
        "settings": dataclasses.replace(sweep.eval.settings, **eval_settings),
        "sets": eval_sets,
    })
    resources = sweep.resources.model_copy(update={"cpu": 1, "gpu": 0, "mask_gpu": 0, "mask_actors": 1, "mask_batch_size": 4})
    tracking = sweep.tracking.model_copy(update={"experiment": f"{sweep.tracking.experiment or sweep.name}-smoke"})
    return sweep.model_copy(update={
        "name": f"{sweep.name}-smoke", "datasets": datasets, "maskers": maskers, "grid": grid, "train": train,
        "eval": evaluation, "resources": resources, "encoders": smoke_encoders(sweep.encoders), "tracking": tracking, "storage": str(storage), "regions_dir": None,
        "seeds": sweep.seeds[:1],
    })
