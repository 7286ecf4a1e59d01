"""A picture per region store for the sweep's parent run: what each masker kept and what views it gave.

The same figure as ``python -m masking.preview`` (drawn by ``masking.preview.draw``, like Figure 1 of
the SAMCLR paper): a few images with their kept regions (solid), the boxes enlarged by ``c``
(dashed) and view pairs from the ``regions`` sampler, here read from the region store the trials
train on, so nothing is masked twice. ``c`` and the view size are those of the store's first trial.
"""

from __future__ import annotations

from typing import Any

from masking.preview import draw, open_rgb
from masking.regions import Regions
from orchestrator.plan import MaskJob, Plan

FOLDER = "previews"
IMAGES = 4
"""Rows per preview (``python -m masking.preview``'s default)."""
PAIRS = 3
"""View pairs per image (``python -m masking.preview``'s default)."""


def preview_name(plan: Plan, job: MaskJob) -> str:
    """``<dataset>--<masker>.png``; with several stores of one masker (a masker-setting grid axis),
    the store's own name (``<dataset>--<masker>--<fingerprint>.png``)."""
    several = sum(j.dataset == job.dataset and j.masker == job.masker for j in plan.mask_jobs) > 1
    return job.store.name.removesuffix(".parquet") + ".png" if several else f"{job.dataset}--{job.masker}.png"


def store_previews(plan: Plan, stores: dict[str, Any], images: dict[str, list[str]], seed: int = 0) -> dict[str, bytes]:
    """File name -> PNG, one per region store that a trial uses (``stores``: store file -> RegionStore):
    the first ``IMAGES`` training images (sorted by path) with at least one region; a store none of
    whose images has a region still gets its preview, of whole images."""
    out = {}
    for job in plan.mask_jobs:
        trial = next((t for t in plan.trials if t.store == job.store), None)
        if trial is None:
            continue
        store = stores[str(job.store)]
        paths = sorted(images[job.dataset])
        chosen = [p for p in paths if p in store and len(store[p].regions) > 0][:IMAGES] or paths[:IMAGES]
        root = plan.datasets[job.dataset].images
        shown = [(p, open_rgb(root / p), store[p].regions if p in store else Regions.empty()) for p in chosen]
        c, size = trial.train.c, trial.train.image_size
        title = (
            f"{job.label}: masker {job.config.name}, min area {job.config.min_area} px, c = {c} "
            "(solid: kept regions, dashed: enlarged by c; view pairs of the regions sampler)"
        )
        out[preview_name(plan, job)] = draw(shown, c, PAIRS, size, title, seed)
    return out


def log_previews(plan: Plan, stores: dict[str, Any], images: dict[str, list[str]], run_dir: Any, uri: str, parent: str, log) -> None:
    """Draw the previews, write them under ``<run folder>/previews/`` and to the parent run's
    ``previews/`` artifacts; a diagnostic: a failure is one line and the sweep goes on."""
    from orchestrator.tracking import TrackingError, log_files

    try:
        files = store_previews(plan, stores, images)
        for name, data in files.items():
            (run_dir / FOLDER / name).write_bytes(data)
        log_files(uri, parent, files, FOLDER)
    except (OSError, ValueError, TrackingError) as err:
        log(f"warning: region previews not made ({type(err).__name__}: {err})")
