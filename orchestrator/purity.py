"""View-pair purity of a sweep's configurations, measured by the driver after the region stage.

For every dataset with instance masks, each distinct (dataset, masker, c, crops) of the plan's
trials (``random`` sampling: (dataset, crops), the SimCLR baseline) gets ``masking.purity``'s
measurement with the trials' own sampler settings: their method's ``CropSpec``s
(``selfsup.methods``), their ``c``, their region store, on the images they train on. It is cheap
(at most ``MAX_IMAGES`` images, evenly spaced, ``DRAWS`` draws each: about a second per
configuration), so the sweep always does it. The rows go to the parent MLflow run as
``purity.json`` (each row lists the trials it describes) and as metrics
``purity/<dataset>/<masker or whole_image>/c_<c>[/crops_<i>]/<measure>``; the report puts them
beside each configuration's KNN gain (``orchestrator.report``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from masking.purity import load_scenes, read_classes, view_pair_purity
from masking.crops import CropSpec
from orchestrator.plan import Plan
from orchestrator.setting_axes import is_masker_axis
from samdata.synthetic import SyntheticPaths
from selfsup.methods import method_spec

MAX_IMAGES = 256
"""Images per measurement (evenly spaced over the training images)."""
DRAWS = 32
"""Draws (view sets) per image."""
FILE = "purity.json"
"""Artifact of the parent run holding the rows."""
MEASURES = ("same_object", "same_class", "background_view", "regions_per_image", "fallback")


def crops_text(crops: Sequence[CropSpec]) -> str:
    """A short description of a method's views: ``2x32px@[0.2,1]`` per spec, joined by ``+``."""
    return "+".join(f"{c.n}x{c.size}px@[{c.scale[0]:g},{c.scale[1]:g}]" for c in crops)


def purity_groups(plan: Plan) -> list[dict[str, Any]]:
    """The distinct (dataset, masker with its axis values, c, crops) of the trials whose dataset has
    instance masks, with the trials of each; masker and c are None for ``random`` sampling."""
    groups: dict[tuple, dict[str, Any]] = {}
    for t in plan.trials:
        if plan.datasets[t.dataset].masks is None or not method_spec(t.train.method).trains:
            continue  # frozen encoders draw no views
        train = t.train
        crops = method_spec(train.method).crops(train.settings(), train.image_size)
        geometry = tuple((c.n, c.scale, c.ratio) for c in crops)  # what the boxes depend on
        regions = train.sampling == "regions"
        masker_axes = {k: v for k, v in t.settings.items() if is_masker_axis(k)} if regions else {}
        key = (t.dataset, t.masker if regions else None, train.c if regions else None, geometry, str(t.regions), repr(masker_axes))
        group = groups.setdefault(
            key,
            {"dataset": t.dataset, "masker": key[1], "sampling": train.sampling, "c": key[2], "crops": crops, "trials": [],
             "store": str(t.store) if regions else None, "min_area": t.min_area if regions else None, "masker_settings": masker_axes},
        )
        group["trials"].append(t.key)
    return list(groups.values())


def classes_file(plan: Plan, dataset: str):
    """The classes of a synthetic dataset's instances (``scenes/classes.json``), or None."""
    spec = plan.sweep.datasets[dataset]
    if spec.synthetic is None:
        return None
    file = SyntheticPaths(plan.datasets[dataset].images.parent.parent).classes
    return file if file.is_file() else None


def measure(
    plan: Plan, stores: Mapping[tuple[str, str], Any], images: Mapping[str, Sequence[str]],
    max_images: int = MAX_IMAGES, draws: int = DRAWS, log=print,
) -> list[dict[str, Any]]:
    """One row per ``purity_groups`` entry: its keys (crops as text), the trials, and the measures.
    ``stores``: store file (``MaskJob.store`` as text) -> RegionStore; ``images``: dataset -> training images."""
    rows = []
    classes: dict[str, Any] = {}
    groups = purity_groups(plan)
    geometries = {}
    for group in groups:
        geometries.setdefault(crops_text(group["crops"]), len(geometries))
    for group in groups:
        name = group["dataset"]
        if name not in classes:
            file = classes_file(plan, name)
            classes[name] = read_classes(file) if file else None
        store = stores[group["store"]].at_least(group["min_area"]) if group["masker"] else None
        scenes = load_scenes(plan.datasets[name].masks, paths=images[name], store=store, classes=classes[name], max_images=max_images)
        result = view_pair_purity(scenes, group["crops"], group["sampling"], group["c"] or 1.0, draws)
        text = crops_text(group["crops"])
        row = {**{k: v for k, v in group.items() if k not in ("crops", "store")}, "crops": text, "crops_index": geometries[text], "max_images": max_images, **result.as_dict()}
        rows.append(row)
        shown = "".join(f" {k}={v}" for k, v in group["masker_settings"].items())
        log(f"purity {name}/{group['masker'] or 'whole image'}{shown} c={group['c'] or '-'} {text}: {result.line()}")
    return rows


def metric_name(row: Mapping[str, Any], measure_name: str, several_crops: bool) -> str:
    """``purity/<dataset>/<masker or whole_image>[/<masker axis>_<value>...]/c_<c>[/crops_<i>]/<measure>``
    (MLflow's allowed characters), e.g. ``purity/scenes/fz/maskers.fz.min_area_400/c_1.3/same_object``."""
    parts = ["purity", row["dataset"], row["masker"] or "whole_image"]
    parts += [f"{k}_{v}" for k, v in (row.get("masker_settings") or {}).items()]
    parts.append(f"c_{row['c'] if row['c'] is not None else '-'}")
    if several_crops:
        parts.append(f"crops_{row['crops_index']}")
    return "/".join([*parts, measure_name])


def metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The rows as parent-run metrics (measures that are None are left out)."""
    several = len({r["crops_index"] for r in rows}) > 1
    return {metric_name(r, m, several): float(r[m]) for r in rows for m in MEASURES if r.get(m) is not None}


def seed_mean(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """One row for a configuration whose seeds were measured apart (each seed's trial trains on the
    regions of its own store: a later round's, ``orchestrator.rounds``): each measure averaged over
    the rows (None where a row lacks it), ``rows`` their number. One row is returned as it is."""
    if len(rows) == 1:
        return rows[0]
    out: dict[str, Any] = {"trials": [t for r in rows for t in r.get("trials", ())], "rows": len(rows)}
    for m in MEASURES:
        values = [r.get(m) for r in rows]
        out[m] = None if any(v is None for v in values) else sum(values) / len(values)
    return out


def to_json(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps(list(rows), indent=1).encode()


def read(run_dir) -> list[dict[str, Any]]:
    """The rows a run folder holds (``FILE``; a later round appends its own), or []."""
    file = run_dir / FILE
    return json.loads(file.read_text()) if file.is_file() else []


def by_trial(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Trial key -> its row."""
    return {trial: row for row in rows for trial in row.get("trials", ())}
