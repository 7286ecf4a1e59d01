"""From a validated sweep to concrete work: resolved datasets, region-store jobs and trials.

Grid expansion is the product of the grid axes and the seeds, except that keys a trial ignores
are dropped before de-duplication: a ``random``-sampling trial ignores ``masker`` and ``c``, so
``simclr`` x 2 maskers x 3 values of c is one trial, not six. A ``frozen`` trial (a frozen encoder,
``orchestrator.frozen``) ignores every training axis and the dataset: one trial per encoder and seed.
Setting axes (``orchestrator.setting_axes``): an ``eval.*`` axis applies to every trial, a
``maskers.<name>.*`` axis only to the trials that sample regions with masker ``<name>``.

Region stores: one per dataset and distinct masker configuration the trials use, ``min_area`` aside.
``masking.regions.select_regions`` drops masks below ``min_area`` before the coarsest selection, so
the regions kept at a larger ``min_area`` are exactly those of a smaller one's store that are at
least that large: a ``min_area`` axis needs one store, computed at its smallest value, and each
trial drops the smaller regions when it loads it (``Trial.min_area``).

A masker whose checkpoint names a trial of the sweep (``checkpoint: "trial:method=simclr"``,
``orchestrator.rounds``) gives each trial using it its source trial (``Trial.after``) and a store per
source (``MaskJob.after``), computed in a later round once the source has finished.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from masking.maskers import MaskerConfig
from samdata.storage import Location
from masking.store import dataset_files, fingerprint, store_file
from orchestrator import frozen, rounds
from orchestrator.config import TRAIN_KEYS, MaskerSpec, SweepConfig, SweepError, method_keys, train_config
from orchestrator.setting_axes import SettingAxis, is_masker_axis, is_setting_axis, override, parse_axis
from selfsup.methods import METHOD_KEYS
from orchestrator.rundirs import storage_location
from selfsup.config import EvalConfig, TrainConfig, flat_settings
from selfsup.data.evalsets import build_eval_set
from samdata.image_files import list_images
from samdata.synthetic import SyntheticConfig, SyntheticPaths, generate


@dataclass(frozen=True)
class Dataset:
    name: str
    images: Path
    masks: Path | None
    paths: tuple[str, ...]


@dataclass(frozen=True)
class EvalSetRef:
    """What a trial needs to build an eval set (plain values: it travels to Ray workers)."""

    kind: str
    root: str
    name: str
    download: bool


@dataclass(frozen=True)
class MaskJob:
    dataset: str
    masker: str
    config: MaskerConfig
    store: Location
    variant: str = ""
    """The masker-setting axis values that tell this store from the masker's others (``min_area`` aside), if any."""
    after: str | None = None
    """The trial whose last checkpoint the masker reads (``params.checkpoint: trial:...``): the store is
    computed when that trial has finished, in a later round (``orchestrator.rounds``)."""

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.masker}" + (f" ({self.variant})" if self.variant else "")


@dataclass(frozen=True)
class Trial:
    key: str
    dataset: str
    masker: str | None
    train: TrainConfig
    store: Location | None
    """The region store the trial loads (shared by the trials of every ``min_area`` of one masker configuration)."""
    eval: EvalConfig = EvalConfig()
    """Its evaluation: the sweep's ``eval`` settings with its ``eval.*`` axis values."""
    min_area: int | None = None
    """Regions smaller than this (px) are dropped when the store is loaded; None: no regions."""
    regions: Location | None = None
    """The store its regions equal, named as if computed at its own ``min_area`` (``store`` itself
    unless a ``min_area`` axis shares one store): what ``--resume`` identifies its regions by."""
    settings: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    """Its values of the sweep's setting axes (``eval.knn_k``, ``maskers.fz.min_area``, ...), by grid
    key; an axis the trial ignores (another masker's, or any masker's for whole-image views) is absent."""
    after: str | None = None
    """The trial whose last checkpoint gives this trial's regions (its masker names ``trial:...``):
    it trains in a later round (``orchestrator.rounds``)."""

    def params(self) -> dict[str, Any]:
        """The settings that define this trial (what MLflow shows as params), method settings included
        under their own names (temperature, queue_size, ...), setting axes under their grid keys
        (``eval.knn_k``, ``maskers.fz.min_area``)."""
        if frozen.is_frozen(self.train):
            return {**frozen.params(self.train), **self.settings}
        out: dict[str, Any] = {"dataset": self.dataset, "masker": self.masker or "-"}
        out.update(flat_settings(dataclasses.asdict(self.train)))
        if self.train.sampling == "random":
            out["c"] = "-"
        out.update(self.settings)
        return out


NOT_A_SETTING = ("seed", "workers", "device")
"""Trial params that do not change what a trial measures: trials that differ only in these are one
configuration (its seeds; where and with how many loader workers it ran)."""
SHOWN_FIRST = ("method", "sampling", "masker", "c", "temperature")
"""The settings tables show first, in this order (the SAMCLR paper's comparison); the rest by name."""


def configuration(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """What identifies a trial's configuration: its params (``Trial.params``, or the same params as
    MLflow holds them) without ``NOT_A_SETTING``, values as text, sorted by name. Generic over the
    keys: a new grid axis is part of it with no change here. Trials with equal configurations are the
    seeds of one configuration (``orchestrator.report`` averages over them)."""
    return tuple(sorted((str(k), str(v)) for k, v in params.items() if k not in NOT_A_SETTING))


def varying_settings(params: Iterable[Mapping[str, Any]]) -> list[str]:
    """The keys whose values (as text; a missing key counts as a value of its own) differ among
    ``params`` (trials' or configurations' params), ``SHOWN_FIRST`` first, then by name with
    ``NOT_A_SETTING`` last: the columns a table needs to tell the trials apart."""
    rows = list(params)
    keys = {k for p in rows for k in p}
    found = [k for k in keys if len({None if k not in p else str(p[k]) for p in rows}) > 1]
    first = {k: i for i, k in enumerate(SHOWN_FIRST)}
    return sorted(found, key=lambda k: (first.get(k, len(first)), k in NOT_A_SETTING, k))


def distinguishing_settings(params: Sequence[Mapping[str, Any]]) -> list[str]:
    """The settings that tell trials apart (their params): those that vary among the trials of one
    method (any grid axis, the seeds, the frozen encoders), and those of ``SHOWN_FIRST`` that vary at
    all (SAMCLR's sampling and temperature beside SimCLR's); not those only a method's preset makes
    differ (DINO's head sizes beside SimCLR's). In ``varying_settings``' order."""
    by_method: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for p in params:
        by_method[str(p.get("method"))].append(p)
    keep = {k for group in by_method.values() for k in varying_settings(group)}
    return [k for k in varying_settings(params) if k in keep or k in SHOWN_FIRST]


@dataclass(frozen=True)
class Plan:
    sweep: SweepConfig
    datasets: dict[str, Dataset]
    eval_sets: tuple[EvalSetRef, ...]
    mask_jobs: tuple[MaskJob, ...]
    trials: tuple[Trial, ...]
    storage: Location
    regions_dir: Location
    missing: tuple[str, ...] = ()
    """Data a dry run found missing (a real run stops at the first)."""
    warnings: tuple[str, ...] = ()
    """Settings that will not run as written (each names the setting and what runs instead)."""


def _abs(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _synthetic_config(params: dict[str, Any]) -> SyntheticConfig:
    return SyntheticConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def _problem(message: str, missing: list[str] | None) -> None:
    """Raise, or (for a dry run) note the problem and go on."""
    if missing is None:
        raise SweepError(message)
    missing.append(message)


def resolve_datasets(sweep: SweepConfig, base: Path, missing: list[str] | None = None) -> dict[str, Dataset]:
    """Every pretraining set, with the synthetic ones generated on first use."""
    out = {}
    for name, spec in sweep.datasets.items():
        root = _abs(spec.root, base)
        files: tuple[str, ...] = ()
        if spec.synthetic is not None:
            params = dict(spec.synthetic)
            if params.get("items_root"):
                params["items_root"] = str(_abs(params["items_root"], base))
            try:
                paths = generate(root, _synthetic_config(params))
            except FileNotFoundError as err:
                _problem(f"datasets.{name}.synthetic: {err}", missing)
                paths = SyntheticPaths(root)
            images, masks = paths.images, paths.masks
        else:
            images, masks = root, _abs(spec.masks, base) if spec.masks else None
            if masks is not None and not masks.is_dir():
                _problem(f"datasets.{name}.masks: {masks} does not exist", missing)
        if images.is_dir():
            files = tuple(list_images(images))
            if not files:
                _problem(f"datasets.{name}.root: {images} holds no images", missing)
        else:
            _problem(f"datasets.{name}.root: {images} does not exist", missing)
        out[name] = Dataset(name, images, masks, files)
    return out


def resolve_eval_sets(sweep: SweepConfig, base: Path, datasets: dict[str, Dataset], missing: list[str] | None = None) -> tuple[EvalSetRef, ...]:
    refs = []
    for name, spec in sweep.eval.sets.items():
        if spec.dataset is not None:
            root = SyntheticPaths(datasets[spec.dataset].images.parent.parent).eval
        else:
            root = _abs(spec.root, base)
        ref = EvalSetRef(spec.kind, str(root), name, spec.download)
        if spec.kind == "folder" or not spec.download:
            try:
                eval_set = build_eval_set(ref.kind, ref.root, ref.name, ref.download)
                if spec.kind != "folder":
                    eval_set.make("val", None)
            except (FileNotFoundError, ValueError, RuntimeError) as err:
                _problem(f"eval.sets.{name}: {err}", missing)
        refs.append(ref)
    return tuple(refs)


def _masker_spec(sweep: SweepConfig, masker: str, axes: dict[str, Any]) -> MaskerSpec:
    """The ``maskers`` entry with a trial's values of its ``maskers.<masker>.*`` axes (checked by the schema)."""
    entry = sweep.maskers[masker].model_dump()
    for key, value in axes.items():
        entry = override(entry, parse_axis(key).path, value)
    return MaskerSpec.model_validate(entry)


def _eval_settings(sweep: SweepConfig, axes: dict[str, Any]) -> EvalConfig:
    """The sweep's evaluation settings with a trial's values of the ``eval.*`` axes."""
    values = {parse_axis(key).path[0]: value for key, value in axes.items()}
    return dataclasses.replace(sweep.eval.settings, **values) if values else sweep.eval.settings


def _masker_config(sweep: SweepConfig, masker: str, dataset: Dataset, base: Path, missing: list[str] | None, spec: MaskerSpec) -> MaskerConfig:
    params = dict(spec.params)
    if params.get("checkpoint") and not str(params["checkpoint"]).startswith(rounds.PREFIX):  # actors run elsewhere: absolute path, checked before Ray starts
        params["checkpoint"] = str(_abs(str(params["checkpoint"]), base))
        if not Path(params["checkpoint"]).is_file():
            _problem(f"maskers.{masker}.params.checkpoint: {params['checkpoint']} does not exist", missing)
    if spec.name == "ground_truth":
        if dataset.masks is None:
            raise SweepError(f"maskers.{masker}: ground_truth needs instance masks, and datasets.{dataset.name} has no 'masks' folder")
        params.setdefault("masks_root", str(dataset.masks))
    return MaskerConfig(spec.name, params, spec.min_area, spec.containment, spec.keep_masks)


def _masker_warnings(sweep: SweepConfig, job: MaskJob) -> list[str]:
    """HQ-SAM runs in float32 on the CPU whatever ``dtype`` says: say so when its actors get no GPU."""
    masker, config = job.masker, job.config
    dtype, device = config.params.get("dtype"), str(config.params.get("device", "auto"))
    on_cpu = device == "cpu" or (device == "auto" and sweep.resources.mask_gpu == 0)
    if config.name == "hqsam" and dtype not in (None, "float32") and on_cpu:
        why = "device: cpu" if device == "cpu" else "resources.mask_gpu is 0"
        return [f"maskers.{masker}.params.dtype: {dtype} is overridden with float32: its actors run on the CPU ({why})"]
    return []


def check_batch_size(train: TrainConfig, dataset: str, images: int, trial: str, why: str = "") -> None:
    """Every step drops its last partial batch: a batch larger than the dataset trains on nothing
    (frozen encoders train on nothing anyway)."""
    if images and train.batch_size > images and not frozen.is_frozen(train):
        raise SweepError(
            f"trial {trial}: batch_size {train.batch_size} is larger than dataset {dataset}'s {images} images{why} "
            "(every epoch would have no step); lower train.batch_size"
        )


def _trial_key(point: dict[str, Any], varying: list[str]) -> str:
    parts = [str(point["method"])]
    parts += [f"{k}={point[k]}" for k in varying if k != "method" and point.get(k) is not None]
    return ",".join(parts)


def make_plan(sweep: SweepConfig, base: Path | None = None, dry_run: bool = False) -> Plan:
    """Resolve and check everything a sweep needs; raise SweepError naming what is wrong
    (a dry run lists missing data instead, so a sweep can be planned before its data is there)."""
    base = base or Path.cwd()
    missing: list[str] | None = [] if dry_run else None
    storage = storage_location("storage", sweep.storage, base)
    regions_dir = storage_location("regions_dir", sweep.regions_dir, base) if sweep.regions_dir else storage / "regions"
    datasets = resolve_datasets(sweep, base, missing)
    eval_sets = resolve_eval_sets(sweep, base, datasets, missing)
    axes = dict(sweep.grid)
    axes.setdefault("dataset", list(sweep.datasets))
    axes["seed"] = list(sweep.seeds)
    varying = [k for k, v in axes.items() if len(v) > 1]
    shared = dataclasses.asdict(sweep.train)
    method_axes = [k for k in axes if k in METHOD_KEYS and k not in TRAIN_KEYS]
    setting_axes: dict[str, SettingAxis] = {k: parse_axis(k) for k in axes if is_setting_axis(k)}
    trials: dict[str, Trial] = {}
    configs: dict[str, MaskerConfig] = {}  # trial key -> its own masker configuration
    masker_configs: dict[tuple[str, str, str], MaskerConfig] = {}
    encoder_checks: set[str] = set()
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values))
        dataset = datasets[point["dataset"]]
        own = method_keys(point["method"])
        for key in method_axes:
            if key not in own:  # e.g. BYOL has no temperature: the axis does not multiply its trials
                point[key] = None
        params = {k: v for k, v in {**shared["method_params"], **{k: point[k] for k in method_axes}}.items() if k in own}
        if point["method"] == frozen.METHOD:  # nothing trained: training axes and the dataset do not apply
            point.update({k: None for k in point if k in TRAIN_KEYS and k not in (*frozen.KEPT, "method")} | {"dataset": None})
            params = frozen.encoder_params(sweep, params, base, encoder_checks, missing)
        settings = {k: v for k, v in point.items() if k in TRAIN_KEYS and (v is not None or point["method"] != frozen.METHOD)}
        try:
            train = train_config({**shared, **settings, "method_params": params}).resolved()
        except ValueError as err:
            raise SweepError(f"method {point['method']}: {err}") from None
        masker = point.get("masker")
        if train.sampling == "random":
            point["masker"] = point["c"] = None
            masker = None
        elif masker is None:
            if len(sweep.maskers) != 1:
                raise SweepError(f"method {train.method} samples regions: add a 'masker' grid axis naming one of maskers ({', '.join(sweep.maskers) or 'none defined'})")
            masker = next(iter(sweep.maskers))
        for key, axis in setting_axes.items():
            if axis.masker is not None and axis.masker != masker:  # another masker's setting, or no regions at all
                point[key] = None
        key = _trial_key(point, varying)
        if key in trials:
            continue
        check_batch_size(train, dataset.name, len(dataset.paths), key)
        axis_values = {k: point[k] for k in setting_axes if point[k] is not None}
        evaluation = _eval_settings(sweep, {k: v for k, v in axis_values.items() if setting_axes[k].masker is None})
        if masker is not None:
            own_axes = {k: v for k, v in axis_values.items() if setting_axes[k].masker is not None}
            which = (dataset.name, masker, repr(own_axes))
            if which not in masker_configs:  # checked once (a dry run notes a missing checkpoint once)
                spec = _masker_spec(sweep, masker, own_axes) if own_axes else sweep.maskers[masker]
                masker_configs[which] = _masker_config(sweep, masker, dataset, base, missing, spec)
            configs[key] = masker_configs[which]
        trials[key] = Trial(key, dataset.name, masker, train, None, evaluation, settings=axis_values)
    for key, axis in setting_axes.items():
        if axis.masker is not None and not any(key in t.settings for t in trials.values()):
            raise SweepError(f"grid.{key}: no trial samples regions with masker {axis.masker!r} (check the 'masker' and 'method' axes)")
    trials, configs = rounds.resolve_sources(trials, configs)
    jobs, trials = _region_stores(sweep, datasets, regions_dir, trials, configs)
    warnings = list(dict.fromkeys(w for job in jobs for w in _masker_warnings(sweep, job)))
    return Plan(
        sweep, datasets, eval_sets, tuple(jobs), tuple(trials.values()), storage, regions_dir, tuple(missing or ()), tuple(warnings)
    )


def _region_stores(
    sweep: SweepConfig, datasets: dict[str, Dataset], regions_dir: Location, trials: dict[str, Trial], configs: dict[str, MaskerConfig]
) -> tuple[list[MaskJob], dict[str, Trial]]:
    """One region-store job per (dataset, masker, masker configuration but ``min_area``), computed at
    the smallest ``min_area`` of its trials (see the module docstring); each trial gets its store,
    its own ``min_area`` and the store its regions equal (``Trial.regions``)."""
    files: dict[str, list[tuple[str, int]]] = {}

    def store_of(dataset: Dataset, masker: str, config: MaskerConfig) -> Location:
        if dataset.name not in files:
            files[dataset.name] = dataset_files(dataset.images, dataset.paths)
        return store_file(regions_dir, dataset.name, masker, fingerprint(files[dataset.name], config.as_dict()))

    def shared(key: str) -> tuple:
        t, config = trials[key], configs[key]
        return (t.dataset, t.masker, repr(dataclasses.replace(config, min_area=0).as_dict()))

    smallest: dict[tuple, int] = {}
    for key, config in configs.items():
        smallest[shared(key)] = min(config.min_area, smallest.get(shared(key), config.min_area))
    jobs: dict[tuple, MaskJob] = {}
    out = dict(trials)
    for key, config in configs.items():
        t, group = trials[key], shared(key)
        if group not in jobs:
            job_config = dataclasses.replace(config, min_area=smallest[group])
            variant = ",".join(f"{k}={v}" for k, v in t.settings.items() if is_masker_axis(k) and parse_axis(k).path != ("min_area",))
            jobs[group] = MaskJob(t.dataset, t.masker, job_config, store_of(datasets[t.dataset], t.masker, job_config), variant, t.after)
        store = jobs[group].store
        regions = store if config.min_area == smallest[group] else store_of(datasets[t.dataset], t.masker, config)
        out[key] = dataclasses.replace(t, store=store, min_area=config.min_area, regions=regions)
    return list(jobs.values()), out


def describe(plan: Plan) -> str:
    """The planned work, for ``--dry-run`` and the start of a sweep."""
    lines = [f"sweep {plan.sweep.name}: {len(plan.trials)} trials, {len(plan.mask_jobs)} region jobs"]
    lines += [f"  missing: {m}" for m in plan.missing]
    lines += [f"  warning: {w}" for w in plan.warnings]
    numbers = rounds.round_numbers(plan.trials)
    for job in plan.mask_jobs:
        n = len(plan.datasets[job.dataset].paths)
        line = f"  regions {job.label}: {job.config.name} on {n} images, min area {job.config.min_area} px"
        if job.after:  # its store is named by the checkpoint's content once it exists (orchestrator.rounds)
            lines.append(f"{line}, from the last checkpoint of trial {job.after} (round {numbers[job.after] + 1})")
        else:
            lines.append(f"{line} -> {job.store.name} ({'reuse' if job.store.is_file() else 'compute'})")
    for t in plan.trials:
        tc = t.train
        axes = "".join(f" {k}={v}" for k, v in t.settings.items())
        if frozen.is_frozen(tc):
            lines.append(f"  trial {t.key}: {frozen.trial_line(tc)}{axes}")
            continue
        extra = f" masker={t.masker} c={tc.c}" if t.masker else ""
        extra += f" round={numbers[t.key]}" if t.after else ""
        lines.append(
            f"  trial {t.key}: {tc.method} sampling={tc.sampling} temperature={tc.method_params.get('temperature', '-')} "
            f"epochs={tc.epochs} batch={tc.batch_size} seed={tc.seed} dataset={t.dataset}{extra}{axes}"
        )
    return "\n".join(lines)
