"""The sweep file: a validated schema (pydantic) and a loader whose errors name the YAML position.

Every check that can fail runs here, before Ray starts: wrong keys and types, unknown methods and
maskers, c < 1, missing dataset folders, eval sets without ``train/`` and ``val/``. A failure is one
line: ``experiments/x.yaml:12:5: grid.c: c must be >= 1 (got 0.5)``.

Names (the sweep's, and those of its datasets, maskers and eval sets) become parts of file,
folder and metric names, so they are plain words: no ``/``, ``\\`` or ``..`` can make a path
escape its folder. Paths (data roots, ``storage``, ``regions_dir``, checkpoints) may be absolute
or relative to the working directory: they are the user's own choice of place. The file is read
with YAML's safe loader (no tags that build Python objects).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, create_model, field_validator, model_validator

from masking.maskers import MASKERS, check_masker_params, masker_parameters
from selfsup.config import EvalConfig, TrainConfig
from selfsup.data.evalsets import EVAL_SETS
from samdata.synthetic import SyntheticConfig
from selfsup.encoders import CACHE, ENCODERS, preprocessing
from selfsup.methods import METHOD_KEYS, METHODS
from selfsup.methods.frozen import FROM_SECTION
from orchestrator.setting_axes import SYNTAX, is_setting_axis, override, parse_axis

TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "method_params")
GRID_KEYS = ("dataset", "masker", *TRAIN_KEYS, *METHOD_KEYS)


def method_keys(method: str) -> set[str]:
    """The names of a method's settings (``selfsup.methods``)."""
    return {f.name for f in dataclasses.fields(METHODS[method].settings)}


class SweepError(ValueError):
    """A sweep file that cannot run; the message is one line naming the place."""


class FieldError(ValueError):
    """A validation error inside a field, with the key path below that field (for positions)."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(name: str) -> str:
    """``name`` if it can be part of a file or folder name without escaping it, else ValueError."""
    if not NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"name {name!r} must start with a letter or digit and hold only letters, digits, '_', '-' and "
            "single '.' (it names files and folders)"
        )
    return name


def _check_names(names: Iterable[str]) -> None:
    """Each name valid, and no two that only a case-insensitive disk would confuse."""
    seen: dict[str, str] = {}
    for name in names:
        try:
            check_name(name)
        except ValueError as err:
            raise FieldError((name,), str(err)) from None
        if name.lower() in seen:
            raise FieldError((name,), f"name {name!r} differs from {seen[name.lower()]!r} only in case (they would share files)")
        seen[name.lower()] = name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    """A pretraining set: a folder of images (``root``), or the built-in synthetic scenes
    (``synthetic``: generator parameters; generated under ``root`` on first use)."""

    root: str
    synthetic: dict[str, Any] | None = None
    masks: str | None = None
    """Folder of instance-id PNGs mirroring ``root`` (for the ``ground_truth`` masker)."""

    @field_validator("synthetic")
    @classmethod
    def _synthetic_keys(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            known = {f.name for f in dataclasses.fields(SyntheticConfig)}
            unknown = sorted(set(v) - known)
            if unknown:
                raise ValueError(f"unknown synthetic key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
            SyntheticConfig(**{k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
        return v


class EvalSetSpec(_Strict):
    kind: str = "folder"
    root: str | None = None
    """Folder holding ``train/`` and ``val/`` (kind ``folder``) or torchvision's files."""
    dataset: str | None = None
    """For the synthetic scenes: the pretraining dataset whose single-object eval set this is."""
    download: bool = False

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in EVAL_SETS:
            raise ValueError(f"unknown eval set kind {v!r}; known: {', '.join(EVAL_SETS)}")
        return v

    @model_validator(mode="after")
    def _where(self) -> EvalSetSpec:
        if (self.root is None) == (self.dataset is None):
            raise ValueError("give exactly one of root (a folder) and dataset (a synthetic dataset's eval set)")
        return self


@functools.cache
def masker_params_model(name: str) -> type[BaseModel]:
    """A pydantic model of masker ``name``'s parameters, from its constructor's signature
    (``masking.maskers.masker_parameters``): unknown names and wrong types or choices are errors.
    Every parameter is optional here (the plan fills some in, e.g. ``masks_root`` of ground_truth)."""
    fields = {
        key: (kind, None if default is inspect.Parameter.empty else default)
        for key, (kind, default) in masker_parameters(name).items()
    }
    return create_model(f"{name}_params", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)


FILLED_BY_THE_PLAN = {"ground_truth": ("masks_root",)}
"""Masker parameters without a default that the plan fills in (``plan._masker_config``: the
dataset's ``masks`` folder); any other parameter without a default must be in the sweep file."""


class MaskerSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    min_area: int = Field(1000, ge=0)
    containment: float = Field(0.9, gt=0, le=1)
    keep_masks: bool = False
    """Keep each region's mask in the store (run-length encoded): previews draw them, and
    ``python -m masking.purity --store`` can measure views against them where a dataset has no
    instance masks of its own."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v not in MASKERS:
            raise ValueError(f"unknown masker {v!r}; known: {', '.join(sorted(MASKERS))}")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked against the masker's own signature here, before any masker actor is built."""
        name = info.data.get("name")
        if name is None:
            return params
        model = masker_params_model(name)
        try:
            model.model_validate(params)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = err["loc"][0] if err["loc"] else ()
            if err["type"] == "extra_forbidden":
                known = ", ".join(model.model_fields)
                raise FieldError((key,), f"unknown {name} parameter {key!r}; known: {known}") from None
            raise FieldError((key,), f"{err['msg']} (got {err.get('input')!r})") from None
        missing = [
            k for k, (_, default) in masker_parameters(name).items()
            if default is inspect.Parameter.empty and k not in params and k not in FILLED_BY_THE_PLAN.get(name, ())
        ]
        if missing:
            raise FieldError((), f"masker {name} needs {', '.join(missing)} in params")
        try:
            check_masker_params(name, params)
        except (ValueError, TypeError) as err:
            raise FieldError((), str(err)) from None
        return params


class EncoderSpec(_Strict):
    """A frozen encoder, a reference row (``method: frozen``; ``selfsup.encoders``): ``model`` names
    the architecture, ``weights`` a file (relative to the working dir), ``cache`` (timm's / torch
    hub's cache) or ``random`` (tests; the report marks it); ``download: true`` lets ``cache`` fetch
    missing weights (otherwise nothing is downloaded and a missing file stops the plan)."""

    model: str
    weights: str
    download: bool = False
    input_size: int | None = Field(None, ge=8)
    """None: the encoder's own input size; a number: that instead (e.g. small images in tests)."""

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v not in ENCODERS:
            raise ValueError(f"unknown encoder model {v!r}; known: {', '.join(ENCODERS)}")
        return v

    @model_validator(mode="after")
    def _input_size(self) -> EncoderSpec:
        preprocessing(self.model, self.input_size)  # SAM takes 1024 px only
        if self.download and self.weights != CACHE:
            raise ValueError(f"download: true fetches weights into the library cache: set weights: {CACHE} (got {self.weights!r})")
        return self


_TRAIN = TypeAdapter(TrainConfig)
_EVAL = TypeAdapter(EvalConfig)


def train_config(values: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig (pydantic checks the dataclass's own annotations and ranges)."""
    return _TRAIN.validate_python(values)


class EvalSpec(_Strict):
    """The ``eval`` section: EvalConfig's settings plus the eval ``sets``."""

    settings: EvalConfig = EvalConfig()
    sets: dict[str, EvalSetSpec] = Field(default_factory=dict)

    @field_validator("sets")
    @classmethod
    def _names(cls, sets: dict[str, EvalSetSpec]) -> dict[str, EvalSetSpec]:
        _check_names(sets)
        return sets

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {"sets": data.get("sets", {}), "settings": {k: v for k, v in data.items() if k != "sets"}}
        return data


class ResourcesSpec(_Strict):
    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)
    mask_actors: int = Field(1, ge=1)
    """Masker actors of the region precompute (always leaving one CPU for Ray Data's reads)."""
    mask_gpu: float = Field(0, ge=0)
    """GPUs per masker actor (fractional packs several on one GPU)."""
    mask_batch_size: int = Field(8, ge=1)
    max_failures: int = Field(2, ge=0)
    """Times Tune restarts a failed trial from its last checkpoint."""
    shared_image_cache: bool = True
    """``train: {input: gpu}``: the driver decodes each image cache once and the trials on a node
    share one copy through Ray's object store (``orchestrator.shared_caches``); false: each trial
    decodes its own."""


class TrackingSpec(_Strict):
    uri: str | None = None
    """MLflow tracking URI; default ``sqlite:///<working dir>/mlflow.db``."""
    experiment: str | None = None
    """MLflow experiment; default the sweep's name."""


class SweepConfig(_Strict):
    name: str
    """Names the run folders under ``storage`` and, by default, the MLflow experiment."""
    datasets: dict[str, DatasetSpec] = Field(min_length=1)
    maskers: dict[str, MaskerSpec] = Field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    """Training settings shared by every trial (any of them may also be a grid axis). Method settings
    (temperature, base_lr, queue_size, ...) may be written here too; each applies to the methods that have it."""
    eval: EvalSpec = EvalSpec()
    encoders: dict[str, EncoderSpec] = Field(default_factory=dict)
    """Frozen encoders (``method: frozen``, grid axis ``encoder``): reference rows, not pretrained by the sweep."""
    resources: ResourcesSpec = ResourcesSpec()
    tracking: TrackingSpec = TrackingSpec()
    storage: str = "runs"
    """Ray Tune storage path (a shared path on a cluster); relative paths are under the working dir."""
    regions_dir: str | None = None
    """Where region stores live; default ``<storage>/regions``."""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    grid: dict[str, list[Any]]
    """Axes of the trial grid: method (required), dataset, masker, any training key, any method
    setting (e.g. temperature; ignored by methods without it), and by their dotted place in this
    file any evaluation or masker setting (``eval.knn_k``, ``maskers.fz.min_area``,
    ``maskers.fz.params.scale``; ``orchestrator.setting_axes``)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_name(name)

    @field_validator("datasets", "maskers", "encoders")
    @classmethod
    def _names(cls, specs: dict[str, Any]) -> dict[str, Any]:
        _check_names(specs)
        return specs

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("lists a seed twice")
        return seeds

    @field_validator("train", mode="before")
    @classmethod
    def _train_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, where in (("method", "grid.method"), ("seed", "seeds")):
                if key in data:
                    raise FieldError((key,), f"{key!r} is set per trial: use {where}")
            if "method_params" in data:
                raise FieldError(("method_params",), "write method settings directly under train (e.g. temperature: 0.2)")
            for key in FROM_SECTION:
                if key in data:
                    raise FieldError((key,), f"{key!r} of a frozen encoder is set in its encoders entry")
            method_keys = {k: v for k, v in data.items() if k in METHOD_KEYS and k not in TRAIN_KEYS}
            data = {k: v for k, v in data.items() if k not in method_keys}
            if method_keys:
                data["method_params"] = method_keys
        return data

    @field_validator("eval")
    @classmethod
    def _eval_sets(cls, spec: EvalSpec, info: ValidationInfo) -> EvalSpec:
        datasets = info.data.get("datasets", {})
        for name, s in spec.sets.items():
            if s.dataset is not None and (s.dataset not in datasets or datasets[s.dataset].synthetic is None):
                raise FieldError(("sets", name, "dataset"), f"{s.dataset!r} is not a synthetic dataset of this sweep")
        return spec

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]], info: ValidationInfo) -> dict[str, list[Any]]:
        if "method" not in grid:
            raise ValueError("grid needs a 'method' list")
        datasets, maskers = info.data.get("datasets", {}), info.data.get("maskers", {})
        encoders = info.data.get("encoders", {})
        train = info.data.get("train", TrainConfig())
        for key, values in grid.items():
            if is_setting_axis(key):
                _check_setting_axis(key, values, maskers, info.data.get("eval", EvalSpec()).settings)
                continue
            if key in FROM_SECTION:
                raise FieldError((key,), f"{key!r} of a frozen encoder is set in its encoders entry; the grid names encoders (encoder: [...])")
            if key not in GRID_KEYS or key == "seed":
                known = ", ".join(k for k in GRID_KEYS if k != "seed")
                raise FieldError((key,), f"unknown grid key {key!r}; known: {known}, {SYNTAX} (seeds go in 'seeds')")
            if not values:
                raise FieldError((key,), "empty list")
            if len(set(map(repr, values))) != len(values):
                raise FieldError((key,), "lists a value twice")
            for i, value in enumerate(values):
                if key == "method" and value not in METHODS:
                    raise FieldError((key, i), f"unknown method {value!r}; known: {', '.join(sorted(METHODS))}")
                if key == "dataset" and value not in datasets:
                    raise FieldError((key, i), f"{value!r} is not in datasets ({', '.join(datasets)})")
                if key == "masker" and value not in maskers:
                    raise FieldError((key, i), f"{value!r} is not in maskers ({', '.join(maskers) or 'none defined'})")
                if key == "encoder" and value not in encoders:
                    raise FieldError((key, i), f"{value!r} is not in encoders ({', '.join(encoders) or 'none defined'})")
                if key in TRAIN_KEYS and key != "method":
                    try:
                        train_config({**dataclasses.asdict(train), key: value})
                    except ValidationError as err:
                        raise FieldError((key, i), f"{value!r}: {err.errors()[0]['msg']}") from None
        _check_method_settings(grid, train)
        if "frozen" in grid["method"]:
            named = grid.get("encoder") or ([train.method_params["encoder"]] if train.method_params.get("encoder") else [])
            if not named and len(encoders) != 1:
                raise FieldError(("method",), f"method frozen evaluates frozen encoders: add an 'encoder' grid axis naming one of encoders ({', '.join(encoders) or 'none defined'})")
            for name in named:
                if name not in encoders:
                    raise FieldError(("method",), f"encoder {name!r} is not in encoders ({', '.join(encoders) or 'none defined'})")
        return grid


def _check_setting_axis(key: str, values: list[Any], maskers: dict[str, MaskerSpec], evaluation: EvalConfig) -> None:
    """A dotted grid axis (``orchestrator.setting_axes``): its masker and setting exist, and every
    value validates where the sweep file would take it (the masker's or the evaluation's schema)."""
    try:
        axis = parse_axis(key)
    except ValueError as err:
        raise FieldError((key,), str(err)) from None
    if not values:
        raise FieldError((key,), "empty list")
    if len(set(map(repr, values))) != len(values):
        raise FieldError((key,), "lists a value twice")
    if axis.masker is None:
        known = [f.name for f in dataclasses.fields(EvalConfig)]
        if axis.path[0] not in known:
            raise FieldError((key,), f"unknown eval setting {axis.path[0]!r}; known: {', '.join(known)}")
        entry = dataclasses.asdict(evaluation)
    else:
        if axis.masker not in maskers:
            raise FieldError((key,), f"masker {axis.masker!r} is not in maskers ({', '.join(maskers) or 'none defined'})")
        spec = maskers[axis.masker]
        if axis.path[0] == "params" and axis.path[1] not in masker_params_model(spec.name).model_fields:
            known = ", ".join(masker_params_model(spec.name).model_fields)
            raise FieldError((key,), f"unknown {spec.name} parameter {axis.path[1]!r}; known: {known}")
        entry = spec.model_dump()
    for i, value in enumerate(values):
        try:
            if axis.masker is None:
                _EVAL.validate_python(override(entry, axis.path, value))
            else:
                MaskerSpec.model_validate(override(entry, axis.path, value))
        except ValidationError as exc:
            err = exc.errors()[0]
            inner = (err.get("ctx") or {}).get("error")
            message = str(inner) if isinstance(inner, FieldError) else err["msg"].removeprefix("Value error, ")
            raise FieldError((key, i), f"{value!r}: {message}") from None


def _check_method_settings(grid: dict[str, list[Any]], train: TrainConfig) -> None:
    """Every method of the grid resolves with every value of every method-setting axis (and the shared
    ones under ``train``), in every preset of the grid; a setting no method of the grid has is an error."""
    methods = grid["method"]
    shared = dict(train.method_params)
    for key in shared:
        if not any(key in method_keys(m) for m in methods):
            raise FieldError((), f"train.{key} is not a setting of {', '.join(methods)}")
    axes = [k for k in grid if k in METHOD_KEYS and k not in TRAIN_KEYS]
    for key in axes:
        if not any(key in method_keys(m) for m in methods):
            raise FieldError((key,), f"{key!r} is not a setting of {', '.join(methods)}")
    for preset in grid.get("preset", [train.preset]):
        for key, i, value in [(k, i, v) for k in axes for i, v in enumerate(grid[k])] or [(None, 0, None)]:
            for method in methods:
                values = {**shared, **({key: value} if key else {})}
                try:
                    METHODS[method].resolve(preset, {k: v for k, v in values.items() if k in method_keys(method)})
                except ValueError as err:
                    raise FieldError((key, i) if key else (), f"{method}: {err}") from None


# -- loading with positions ----------------------------------------------------------------------


def _positions(node: yaml.Node, prefix: tuple = ()) -> dict[tuple, str]:
    """YAML key path -> 'line:column' for every mapping key and sequence item."""
    out: dict[tuple, str] = {prefix: f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            if path in out:
                where = f"{key.start_mark.line + 1}:{key.start_mark.column + 1}"
                raise SweepError(f"{where}: {'.'.join(map(str, path))}: duplicate key (YAML keeps only the last one)")
            out.update(_positions(value, path))
            out[path] = f"{key.start_mark.line + 1}:{key.start_mark.column + 1}"
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_positions(item, (*prefix, i)))
    return out


def _where(positions: dict[tuple, str], loc: tuple) -> str:
    loc = tuple(x for x in loc if not (isinstance(x, str) and x.startswith("function-")) and x != "settings")
    while loc and loc not in positions:
        loc = loc[:-1]
    return positions.get(loc, "1:1")


def _message(err: dict) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key {err['loc'][-1]!r}"
    if err["type"] == "missing":
        return f"missing key {err['loc'][-1]!r}"
    return msg


def parse_sweep(text: str, source: str = "<sweep>") -> SweepConfig:
    """Validate sweep YAML text; raise SweepError with ``source:line:col: field: message``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SweepError(f"{source}:{where}: YAML syntax error: {problem}") from None
    try:
        positions = _positions(node) if node is not None else {}
    except SweepError as err:
        raise SweepError(f"{source}:{err}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{source}:1:1: a sweep file is a mapping (name, datasets, grid, ...), got {type(data).__name__}")
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        inner = (err.get("ctx") or {}).get("error")
        loc = tuple(err["loc"]) + (inner.loc if isinstance(inner, FieldError) else ())
        field = ".".join(str(x) for x in loc if x != "settings") or "sweep"
        raise SweepError(f"{source}:{_where(positions, loc)}: {field}: {_message(err)}") from None


def load_sweep(path: str | Path) -> SweepConfig:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: sweep file not found")
    return parse_sweep(path.read_text(), str(path))
