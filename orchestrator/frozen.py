"""Frozen encoders in a sweep (``method: frozen``, grid axis ``encoder``): planning and reporting.

A frozen trial evaluates an encoder of the sweep file's ``encoders`` section (``selfsup.encoders``)
with the trained trials' KNN and linear probe (``selfsup.frozen``), in a child run of its own. The
plan copies the entry into the trial's method settings (``model``, ``weights`` as an absolute path,
``download``, ``input_size``) and checks, before Ray starts, that the weights are there: a missing
file, or weights absent from timm's / torch hub's cache without ``download: true``, is one line
naming the file or the timm name. Reports show these trials as reference rows, marked as not
pretrained by the sweep (and random weights as such).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfsup.config import TrainConfig
from selfsup.encoders import CACHE, RANDOM, weights_problem
from selfsup.methods.frozen import FROM_SECTION

METHOD = "frozen"
KEPT = ("seed", "device", "workers", "amp")
"""Training settings a frozen trial keeps (the rest train nothing): the seed draws the probe's
initialisation (and random weights), the others say where and how it runs."""
REFERENCE = "reference, not pretrained by this sweep"
RANDOM_LABEL = "random weights: an architecture check, not a reference"


def is_frozen(train: TrainConfig) -> bool:
    return train.method == METHOD


def encoder_params(sweep, params: dict[str, Any], base: Path, checked: set[str], missing: list[str] | None) -> dict[str, Any]:  # noqa: ANN001 - SweepConfig
    """The frozen trial's settings: its ``encoders`` entry (the single one when the grid names none),
    weights made absolute; the weights checked once per entry (SweepError, or noted in ``missing``
    on a dry run)."""
    from orchestrator.config import SweepError

    name = params.get("encoder") or next(iter(sweep.encoders))  # config checked there is one
    spec = sweep.encoders[name]
    weights = spec.weights
    if weights not in (RANDOM, CACHE):
        path = Path(weights).expanduser()
        weights = str(path if path.is_absolute() else (base / path).resolve())
    if name not in checked:
        checked.add(name)
        problem = weights_problem(spec.model, weights, spec.download)
        if problem:
            if missing is None:
                raise SweepError(f"encoders.{name}.weights: {problem}")
            missing.append(f"encoders.{name}.weights: {problem}")
    return {"encoder": name, "model": spec.model, "weights": weights, "download": spec.download, "input_size": spec.input_size}


def params(train: TrainConfig) -> dict[str, Any]:
    """What MLflow shows of a frozen trial: the encoder and its weights, the seed; no training settings."""
    out: dict[str, Any] = {"dataset": "-", "masker": "-", "method": METHOD, "sampling": "-"}
    out.update({k: getattr(train, k) for k in KEPT})
    out.update({k: train.method_params.get(k) for k in ("encoder", *FROM_SECTION)})
    return out


def trial_line(train: TrainConfig) -> str:
    p = train.method_params
    size = f" input_size={p['input_size']}" if p.get("input_size") else ""
    return f"frozen encoder={p['encoder']} model={p['model']} weights={p['weights']}{size} seed={train.seed} ({REFERENCE})"


def weights_label(weights: str) -> str:
    """How a report names weights: the file's name, ``cache``, or the random-weights warning."""
    if weights in ("", RANDOM):
        return RANDOM_LABEL
    return weights if weights == CACHE else Path(weights).name


def reference_label(setting: dict[str, str]) -> str:
    """A report's label for a frozen configuration (its ``params``)."""
    size = setting.get("input_size")
    at = f", {size} px" if size not in (None, "", "None") else ""
    weights = weights_label(setting.get("weights", ""))
    if weights == RANDOM_LABEL:
        return f"{setting.get('model', '?')}, frozen ({RANDOM_LABEL}{at}; not pretrained by this sweep)"
    return f"{setting.get('model', '?')}, frozen ({weights}{at}; {REFERENCE})"


def smoke_encoders(encoders: dict) -> dict:
    """``--smoke``: every encoder with random weights (nothing to download or find) at a small input
    (28 px for patch-14 ViTs, 32 px otherwise); SAM's encoders become vit_tiny, whose only input is
    1024 px (about 10 s per image on one CPU core)."""
    from selfsup.encoders import encoder_def

    out = {}
    for name, spec in encoders.items():
        d = encoder_def(spec.model)
        if d.family == "sam":
            update = {"model": "sam_vit_tiny", "input_size": None}
        else:
            update = {"input_size": 28 if "patch14" in d.arch else 32}
        out[name] = spec.model_copy(update={**update, "weights": RANDOM, "download": False})
    return out
