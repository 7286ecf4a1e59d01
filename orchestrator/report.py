"""``python -m orchestrator.report SWEEP.yaml``: a sweep's results the way a paper shows them.

Read back from MLflow (the sweep's parent run and its child runs), written under
``<run dir>/report/`` and logged as artifacts of the parent run (``report/``):

- ``report.md``: the paper-style table (one row per configuration, KNN and linear top-1 per eval
  set, mean ± sample std over seeds, in %; the linear probe's last epoch, and its best epoch in a
  column of its own, selected on the validation split); when the sweep evaluated the untrained
  network (``eval.at_start``), its scores and each configuration's gain over it; when the grid has
  several temperatures, region views against whole-image views at *matched* temperatures beside the
  paper's pairing (SAMCLR at 0.07 against SimCLR at 0.5: the paper gives 0.07 for SAMCLR; that its
  SimCLR ran at lightly's 0.5 is an inference, so that pairing may mix the view sampling with the
  temperature); and, for the paper's own tables, the paper's numbers beside ours.
- ``results.csv``: the same numbers, one row per configuration, eval set and metric.
- ``knn_curves.png``: KNN top-1 against epochs per eval set (like the paper's Figure 2), mean over
  seeds with a ± sample-std band, the same std as the tables.

When the sweep measured view-pair purity (datasets with instance masks: the parent run's
``purity.json``, ``orchestrator.purity``), the table gets a "view-pair purity" column (P(both views
show the same object) under each configuration's own sampler) and a section with the Spearman rank
correlation (``scipy.stats.spearmanr``) between purity and the KNN gain over the untrained network
and over the whole-image twin (SimCLR), over the region configurations that differ only in masker
and ``c`` (at least 3 of them): does purity, measured before training, predict the gain?

Statistics (``selfsup.statistics``): trials that share a seed share the initialisation, so every
difference (a gain over the untrained network, region views against whole-image views) is paired by
seed: the mean of the per-seed differences with a t-based 95 % interval and the number of seeds.
With one seed there is no spread to estimate: no ± and no interval, and the report says so.

It also runs at the end of every sweep.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from samdata.storage import Location, location
from orchestrator import frozen
from orchestrator.config import SweepError, load_sweep
from orchestrator.plan import configuration, varying_settings
from orchestrator.purity import seed_mean
from orchestrator.rundirs import latest_run_dir, read_state, storage_location
from orchestrator.table_format import csv_text, markdown
from orchestrator.tracking import TRIAL_TAG, TrackingError, child_runs, log_files, metric_history, read_artifact
from orchestrator.setting_axes import is_region_setting
from selfsup.methods import METHODS, paper_pairing, twin
from selfsup.statistics import PairedDifference, mean_std, paired_difference

METRICS = {"knn": "knn_top1/", "linear": "linear_top1/", "linear_best": "linear_best_top1/"}
"""Metric kind -> MLflow name prefix (then the eval set): KNN, the linear probe's last epoch, and its
best epoch (selected on the validation split; what the reference code and lightly report)."""
BEST_LABEL = "best epoch (selected on the validation split)"
GAIN_LABEL = "gain over the untrained network"
PAPER_RESULTS = Path(__file__).resolve().parent.parent / "experiments" / "paper_results.yaml"
"""The SAMCLR paper's numbers, keyed by sweep name (table1, table2, table3)."""


@dataclass
class TrialResult:
    """One child run: its settings and its curves (metric kind -> eval set -> {epoch: top-1})."""

    params: dict[str, str]
    status: str
    curves: dict[str, dict[str, dict[int, float]]] = field(default_factory=lambda: {kind: {} for kind in METRICS})
    trial: str = ""
    """The trial's key (its run's ``trial_id`` tag)."""

    @property
    def knn(self) -> dict[str, dict[int, float]]:
        return self.curves["knn"]

    @property
    def seed(self) -> str:
        return self.params.get("seed", "")

    @property
    def setting(self) -> tuple[tuple[str, str], ...]:
        """Its configuration (``orchestrator.plan.configuration``): rows are averaged over the rest (the seeds)."""
        return configuration(self.params)

    def final(self, metric: str, eval_set: str) -> float | None:
        """The last point of a curve, after training (epoch 0 is the untrained network)."""
        curve = self.curves[metric].get(eval_set, {})
        trained = [e for e in curve if e > 0]
        return curve[max(trained)] if trained else None

    def start(self, metric: str, eval_set: str) -> float | None:
        """The untrained network's score (epoch 0, ``eval.at_start``), if evaluated."""
        return self.curves[metric].get(eval_set, {}).get(0)


@dataclass(frozen=True)
class Stat:
    """Values over seeds: their mean and sample std (``selfsup.statistics.mean_std``)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0] if self.values else math.nan

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds; None for fewer than two."""
        return mean_std(self.values)[1] if self.values else None

    def text(self) -> str:
        """Mean ± sample std in %; the mean alone for one seed; "–" for none."""
        if not self.values:
            return "–"
        std = self.std
        return f"{100 * self.mean:.1f}" if std is None else f"{100 * self.mean:.1f} ± {100 * std:.1f}"


def difference_text(d: PairedDifference | None) -> str:
    """A paired difference in points: mean, its 95 % t interval when there are two seeds or more, n."""
    if d is None or d.n == 0:
        return "–"
    if d.low is None or d.high is None:
        return f"{100 * d.mean:+.1f}, n = {d.n}"
    return f"{100 * d.mean:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}], n = {d.n}"


def paired(a: dict[str, float], b: dict[str, float]) -> PairedDifference | None:
    """``a - b`` paired by seed over the seeds both have; None when they share none."""
    seeds = [s for s in a if s in b]
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds]) if seeds else None


@dataclass
class Configuration:
    """Every trial of one setting (all seeds)."""

    setting: dict[str, str]
    trials: list[TrialResult]
    label: str = ""
    purity: dict | None = None
    """The view-pair purity row of its trials (``orchestrator.purity``), if measured."""

    def stat(self, metric: str, eval_set: str) -> Stat:
        return Stat(tuple(self.by_seed(metric, eval_set).values()))

    def by_seed(self, metric: str, eval_set: str) -> dict[str, float]:
        """Final scores keyed by seed (trials without the metric left out)."""
        finals = {t.seed: t.final(metric, eval_set) for t in self.trials}
        return {seed: v for seed, v in finals.items() if v is not None}

    def gain(self, metric: str, eval_set: str) -> PairedDifference | None:
        """Final score minus the same trial's untrained score (epoch 0), paired by seed."""
        starts = {t.seed: t.start(metric, eval_set) for t in self.trials}
        return paired(self.by_seed(metric, eval_set), {s: v for s, v in starts.items() if v is not None})

    def curve(self, eval_set: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Epochs, mean and sample std (0 where one seed reached the epoch) of KNN top-1 over seeds."""
        points: dict[int, list[float]] = defaultdict(list)
        for t in self.trials:
            for epoch, value in t.knn.get(eval_set, {}).items():
                points[epoch].append(value)
        epochs = sorted(points)
        stats = [mean_std(points[e]) for e in epochs]
        return np.array(epochs), np.array([m for m, _ in stats]), np.array([s or 0.0 for _, s in stats])


def collect(uri: str, experiment_id: str, parent_id: str) -> list[TrialResult]:
    """Every child run of the sweep's parent run, with its KNN and linear curves."""
    results = []
    for run in child_runs(uri, experiment_id, parent_id):
        result = TrialResult(dict(run.data.params), run.info.status, trial=run.data.tags.get(TRIAL_TAG, ""))
        for name in run.data.metrics:
            for kind, prefix in METRICS.items():
                if name.startswith(prefix):
                    result.curves[kind][name[len(prefix) :]] = metric_history(uri, run.info.run_id, name)
        results.append(result)
    return results


def read_purity(uri: str, parent_id: str) -> list[dict]:
    """The view-pair purity rows the sweep logged (``purity.json`` of the parent run), or []."""
    data = read_artifact(uri, parent_id, "purity.json")
    return json.loads(data) if data else []


def configurations(results: Iterable[TrialResult], purity: Sequence[dict] = ()) -> list[Configuration]:
    """Trials grouped by setting, labelled by the settings that vary across the sweep; each given the
    purity row its trials share (``purity``: rows listing their trials' keys), or the mean of its
    seeds' rows where each seed's regions differ (``orchestrator.purity.seed_mean``)."""
    groups: dict[tuple, list[TrialResult]] = defaultdict(list)
    for r in results:
        groups[r.setting].append(r)
    configs = [Configuration(dict(k), v) for k, v in groups.items()]
    rows = {trial: i for i, row in enumerate(purity) for trial in row.get("trials", ())}
    for c in configs:
        found = {rows.get(t.trial) for t in c.trials}
        if None not in found and found:  # a row per seed where each seed has its own store (a later round's)
            c.purity = seed_mean([purity[i] for i in sorted(found)])
    trained = [c for c in configs if not is_reference(c)]
    varying = varying_settings(c.setting for c in trained)
    for c in configs:
        if is_reference(c):
            c.label = frozen.reference_label(c.setting)
            continue
        parts = [c.setting.get("method", "?")] + [
            f"{_short(k)}={c.setting.get(k)}" for k in varying if k != "method" and c.setting.get(k, "-") != "-"
        ]
        c.label = " ".join(parts)
    return sorted(configs, key=lambda c: (is_reference(c), _sort_key(c.setting)))


def is_reference(config: Configuration) -> bool:
    """A frozen encoder's configuration (``orchestrator.frozen``): a reference row, not pretrained by the sweep."""
    return config.setting.get("method") == frozen.METHOD


def _short(key: str) -> str:
    return {"temperature": "τ"}.get(key, key)


def _sort_key(setting: dict[str, str]) -> tuple:
    def num(v: str) -> float:
        try:
            return float(v)
        except ValueError:
            return math.inf

    return (setting.get("temperature", ""), setting.get("sampling", ""), setting.get("masker", ""), num(setting.get("c", "-")), tuple(sorted(setting.items())))


def eval_sets(results: Iterable[TrialResult]) -> list[str]:
    return sorted({s for r in results for curves in r.curves.values() for s in curves})


def untrained(results: Sequence[TrialResult], metric: str, eval_set: str) -> Stat:
    """Epoch-0 scores, one per seed (the untrained backbone depends on the seed only)."""
    by_seed: dict[str, float] = {}
    for r in results:
        value = r.start(metric, eval_set)
        if value is not None:
            by_seed.setdefault(r.seed, value)
    return Stat(tuple(by_seed.values()))


@dataclass(frozen=True)
class Column:
    """A metric column of the paper-style table: ``what`` is "final" (mean ± std) or "gain" (over epoch 0)."""

    header: str
    eval_set: str
    metric: str
    what: str = "final"


def _columns(results: Sequence[TrialResult], sets: Sequence[str]) -> list[Column]:
    """KNN and linear per eval set; the gain columns where epoch 0 was evaluated, the best-epoch
    column where the probe logged one."""
    has_best = any(r.curves["linear_best"] for r in results)
    has_start = any(r.start(m, s) is not None for r in results for s in sets for m in ("knn", "linear"))
    columns = []
    for s in sets:
        for metric, name in (("knn", "KNN"), ("linear", "linear")):
            columns.append(Column(f"{name} {s}", s, metric))
            if has_start:
                columns.append(Column(f"{name} {s}, {GAIN_LABEL}", s, metric, "gain"))
        if has_best:
            columns.append(Column(f"linear {s}, {BEST_LABEL}", s, "linear_best"))
    return columns


PURITY_LABEL = "view-pair purity"


def purity_text(row: dict | None) -> str:
    """P(same object) of a purity row in %, or "–"."""
    return "–" if not row or row.get("same_object") is None else f"{100 * row['same_object']:.1f}"


def results_table(configs: Sequence[Configuration], sets: Sequence[str], results: Sequence[TrialResult]) -> str:
    """One row per configuration: mean ± sample std over seeds, gains over epoch 0 paired by seed;
    a last row for the untrained network when the sweep evaluated it. When purity was measured, a
    column of it after the seeds."""
    columns = _columns(results, sets)
    with_purity = any(c.purity for c in configs)
    rows = []
    for c in configs:
        cells = [c.stat(k.metric, k.eval_set).text() if k.what == "final" else difference_text(c.gain(k.metric, k.eval_set)) for k in columns]
        rows.append([c.label, str(len(c.trials)), *([purity_text(c.purity)] if with_purity else []), *cells])
    start = {(m, s): untrained(results, m, s) for s in sets for m in ("knn", "linear")}
    if any(start["knn", s].values for s in sets):
        seeds = max(len(start["knn", s].values) for s in sets)
        cells = [start[k.metric, k.eval_set].text() if (k.metric, k.eval_set) in start and k.what == "final" else "" for k in columns]
        rows.append(["untrained network (epoch 0)", str(seeds), *([""] if with_purity else []), *cells])
    return markdown(["configuration", "seeds", *([PURITY_LABEL] if with_purity else []), *(k.header for k in columns)], rows)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (``scipy.stats.spearmanr``, ties averaged); None when either side is constant."""
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


MIN_CORRELATED = 3
"""Region configurations needed for a rank correlation."""


def purity_correlations(configs: Sequence[Configuration], sets: Sequence[str]) -> str | None:
    """Per group of region configurations that differ only in masker and c (at least
    ``MIN_CORRELATED`` with purity) and per eval set: Spearman's rho between P(same object) and the
    mean KNN gain over the untrained network, and over the whole-image twin at the same temperature
    (paired by seed); None when no group is large enough."""
    groups: dict[tuple, list[Configuration]] = defaultdict(list)
    for c in configs:
        if c.setting.get("sampling") == "regions" and c.purity and c.purity.get("same_object") is not None:
            groups[tuple(sorted((k, v) for k, v in c.setting.items() if not is_region_setting(k)))].append(c)
    rows = []
    for key, members in groups.items():
        if len(members) < MIN_CORRELATED:
            continue
        shared = dict(key)
        label = " ".join([shared.get("method", "?")] + [f"{_short(k)}={shared[k]}" for k in ("temperature",) if k in shared])
        for s in sets:
            purity, gains, twins = [], [], []
            for c in members:
                gain = c.gain("knn", s)
                base = _baseline(c, configs, c.setting.get("temperature", ""))
                over = paired(c.by_seed("knn", s), base.by_seed("knn", s)) if base else None
                purity.append(c.purity["same_object"])
                gains.append(gain.mean if gain and gain.n else None)
                twins.append(over.mean if over and over.n else None)
            cells = []
            for values in (gains, twins):
                pairs = [(p, v) for p, v in zip(purity, values) if v is not None]
                rho = spearman([p for p, _ in pairs], [v for _, v in pairs]) if len(pairs) >= MIN_CORRELATED else None
                cells.append("–" if rho is None else f"{rho:+.2f} (n = {len(pairs)})")
            rows.append([label, s, str(len(members)), *cells])
    if not rows:
        return None
    return markdown(["region configurations", "eval set", "configurations", "ρ(purity, KNN gain over untrained)", "ρ(purity, KNN gain over whole-image twin)"], rows)


def _baseline(config: Configuration, configs: Sequence[Configuration], temperature: str | float | None) -> Configuration | None:
    """The whole-image-view twin of a region-view configuration at ``temperature``: same settings
    but random sampling, the method's twin from the registry (``selfsup.methods.twin``: SAMCLR's is
    SimCLR), masker, its settings (a ``maskers.NAME.*`` grid axis) and c not applying."""
    method = twin(config.setting.get("method", ""))
    ignore = {"method", "sampling", "temperature"}
    for other in configs:
        s = other.setting
        if s.get("sampling") == "random" and s.get("method") == method and _same_value(s.get("temperature"), temperature):
            if all(s.get(k) == v for k, v in config.setting.items() if k not in ignore and not is_region_setting(k)):
                return other
    return None


def _same_value(a: str | float | None, b: str | float | None) -> bool:
    """Equal as text, or as numbers (a param's "0.5" is the registry's 0.5); a missing value (a method
    without a temperature) equals nothing."""
    if a is None or b is None:
        return False
    return str(a) == str(b) or (_is_number(str(a)) and _is_number(str(b)) and float(a) == float(b))


def matched_temperature_table(configs: Sequence[Configuration], sets: Sequence[str]) -> str | None:
    """Region views against whole-image views at the same temperature, and at the paper's pairing
    (``selfsup.methods.paper_pairing``: SAMCLR 0.07, SimCLR 0.5) where the sweep has both; None when
    no region configuration has a whole-image twin."""
    header = ["comparison", "region views", "whole-image views"] + [f"Δ KNN {s}" for s in sets] + [f"Δ linear {s}" for s in sets]
    rows = []
    for config in configs:
        if config.setting.get("sampling") != "regions":
            continue
        pairs: list[tuple[str, str | float | None]] = [("matched τ", config.setting.get("temperature"))]
        pairing = paper_pairing(config.setting.get("method", ""))
        if pairing and _same_value(config.setting.get("temperature"), pairing[0]):
            pairs.append(("paper's pairing", pairing[1]))
        for kind, temperature in pairs:
            base = _baseline(config, configs, temperature)
            if base is None:
                continue
            deltas = [difference_text(paired(config.by_seed(m, s), base.by_seed(m, s))) for m in ("knn", "linear") for s in sets]
            rows.append([kind, config.label, base.label, *deltas])
    return markdown(header, rows) if rows else None


def _is_number(v: str | None) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def read_paper(sweep_name: str, paper_file: Path = PAPER_RESULTS) -> tuple[dict, dict[str, str]]:
    """The paper's numbers for a sweep (method -> "knn/<set>" or "linear/<set>" -> top-1 in %) and
    its notes on SAMCLR's gain over SimCLR ("<kind>/<set>" -> text); empty when it has none."""
    if not paper_file.is_file():
        return {}, {}
    data = yaml.safe_load(paper_file.read_text()) or {}
    return data.get(sweep_name) or {}, (data.get("_notes") or {}).get(sweep_name) or {}


def _single(configs: Sequence[Configuration], method: str) -> tuple[Configuration | None, str]:
    """The one configuration of ``method``, or None and why ("not run", "several configurations")."""
    ours = [c for c in configs if c.setting.get("method") == method]
    if len(ours) == 1:
        return ours[0], ""
    return None, "several configurations" if ours else "not run"


def paper_table(sweep_name: str, configs: Sequence[Configuration], paper_file: Path = PAPER_RESULTS) -> str | None:
    """Ours beside the paper's numbers: ours (the linear probe's last epoch, and its best epoch in a
    column of its own), the paper's, ours − paper; None when the paper has no table of this name."""
    paper, _ = read_paper(sweep_name, paper_file)
    if not paper:
        return None
    rows = []
    for method, numbers in paper.items():
        config, why = _single(configs, method)
        for key, value in sorted((numbers or {}).items()):
            metric, eval_set = key.split("/", 1)
            stat = config.stat(metric, eval_set) if config else Stat(())
            best = config.stat("linear_best", eval_set).text() if config and metric == "linear" else "–"
            paper_text = "n/a" if value is None else f"{float(value):.1f}"
            diff = f"{100 * stat.mean - float(value):+.1f}" if stat.values and value is not None else "–"
            rows.append([method, key, stat.text() if config else why, best, paper_text, diff])
    return markdown(["method", "metric", "ours", f"ours, {BEST_LABEL}", "paper", "ours − paper"], rows)


def _paper_methods() -> tuple[str, str]:
    """The paper's region-view method and its whole-image twin, from the registry (samclr, simclr)."""
    return next(((name, spec.twin) for name, spec in METHODS.items() if spec.twin), ("", ""))


def paper_gain_table(sweep_name: str, configs: Sequence[Configuration], paper_file: Path = PAPER_RESULTS) -> str | None:
    """SAMCLR's gain over SimCLR: ours paired by seed, the paper's (difference of its table's
    numbers), and the notes on where the paper's text and table disagree; None without both rows."""
    paper, notes = read_paper(sweep_name, paper_file)
    region, whole = _paper_methods()
    samclr, simclr = paper.get(region) or {}, paper.get(whole) or {}
    keys = sorted(k for k in samclr if k in simclr)
    if not keys:
        return None
    ours_a, _ = _single(configs, region)
    ours_b, _ = _single(configs, whole)
    rows = []
    for key in keys:
        metric, eval_set = key.split("/", 1)
        ours = paired(ours_a.by_seed(metric, eval_set), ours_b.by_seed(metric, eval_set)) if ours_a and ours_b else None
        a, b = samclr[key], simclr[key]
        theirs = "n/a" if a is None or b is None else f"{float(a) - float(b):+.1f}"
        rows.append([key, difference_text(ours), theirs, notes.get(key, "")])
    return markdown(["metric", "ours (paired by seed)", "paper (its table)", "note"], rows)


def results_csv(configs: Sequence[Configuration], sets: Sequence[str]) -> str:
    """A row per configuration, eval set and metric: mean, std, seeds, the gain over epoch 0 with its
    interval, the purity, then every setting of the configurations (a column per key)."""
    keys = sorted({k for c in configs for k in c.setting})
    header = ["configuration", "eval_set", "metric", "mean", "std", "seeds", "gain", "gain_low", "gain_high", "gain_seeds", "purity", *keys]
    rows = []
    for c in configs:
        for s in sets:
            for m in METRICS:
                stat = c.stat(m, s)
                if not stat.values:
                    continue
                gain = c.gain(m, s) if m != "linear_best" else None
                number = [_number(stat.mean), _number(stat.std), len(stat.values)]
                gains = [_number(gain.mean), _number(gain.low), _number(gain.high), gain.n] if gain else ["", "", "", ""]
                purity = _number(c.purity.get("same_object")) if c.purity else ""
                rows.append([c.label, s, m, *map(str, number), *map(str, gains), purity, *(c.setting.get(k, "") for k in keys)])
    return csv_text(header, rows)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


LINE_STYLES = ("-", "--", ":", "-.")


def knn_figure(configs: Sequence[Configuration], sets: Sequence[str]) -> bytes:
    """KNN top-1 against epochs, one panel per eval set, mean over seeds ± std, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(6 * max(1, len(sets)), 4.5), squeeze=False)
    band = 0.15 if len(configs) <= 4 else 0.06  # many overlapping bands hide the lines
    for ax, eval_set in zip(axes[0], sets):
        for i, c in enumerate(configs):
            epochs, mean, std = c.curve(eval_set)
            if len(epochs) == 0:
                continue
            if is_reference(c):  # one point, not a curve: a level across the panel
                ax.axhline(100 * mean[-1], color="0.4", linestyle=LINE_STYLES[1 + i % 3], linewidth=1, label=c.label)
                continue
            # ten colours, then the next line style: every configuration keeps a style of its own
            style = {"color": f"C{i % 10}", "linestyle": LINE_STYLES[i // 10 % len(LINE_STYLES)]}
            ax.plot(epochs, 100 * mean, marker=".", label=c.label, **style)
            ax.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), color=style["color"], alpha=band)
        ax.set_title(f"KNN top-1, {eval_set}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # below the panels, a column per panel; "tight" keeps long labels whole
        fig.tight_layout()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=max(1, min(len(sets), 3)), fontsize=8)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


PAIRED = (
    "paired by seed (trials with the same seed share the initialisation): the mean of the per-seed "
    "differences [its t-based 95 % interval], n = the number of seeds"
)


def _spread_line(configs: Sequence[Configuration]) -> str:
    """What the ± means, or, with one seed everywhere, that there is none."""
    if all(len({t.seed for t in c.trials}) < 2 for c in configs):
        return "one seed per configuration: single runs, so no ± and no interval (a spread needs two seeds or more)."
    return "mean ± sample std over seeds (the mean alone where a configuration has one seed)."


def _legend(results: Sequence[TrialResult], sets: Sequence[str]) -> str:
    """What the gain and best-epoch columns mean, when the table has them."""
    kinds = {k.what if k.what == "gain" else k.metric for k in _columns(results, sets)}
    lines = []
    if "gain" in kinds:
        lines.append(f"*{GAIN_LABEL}*: the final score minus the same trial's epoch-0 score, in points, {PAIRED}.")
    if "linear_best" in kinds:
        lines.append(f"*{BEST_LABEL}*: the probe's best epoch, chosen by its accuracy on the split it is scored on, so optimistic; the linear columns are the last epoch.")
    return "".join(f"\n{line}\n" for line in lines)


def render(
    sweep_name: str,
    results: Sequence[TrialResult],
    configs: Sequence[Configuration],
    sets: Sequence[str],
    paper_file: Path = PAPER_RESULTS,
) -> str:
    """The report's Markdown; ``configs`` and ``sets``: ``configurations(results)``, ``eval_sets(results)``."""
    unfinished = [r for r in results if r.status != "FINISHED"]
    parts = [f"# Results of sweep `{sweep_name}`\n\n", f"{len(results)} trials, {len(configs)} configurations; top-1 in %, {_spread_line(configs)}\n"]
    if unfinished:
        parts.append(f"**{len(unfinished)} trial(s) did not finish** (status {', '.join(sorted({r.status for r in unfinished}))}); their last logged points are used.\n")
    parts += ["\n## Paper-style table\n\n", results_table(configs, sets, results), _legend(results, sets)]
    references = [c for c in configs if is_reference(c)]
    if references:
        parts.append(
            f"\n*Reference rows* ({len(references)}, last in the table; grey levels in the figure): frozen encoders "
            "evaluated once with the same KNN and linear probe at their own input size and normalisation, "
            "**not pretrained by this sweep** (`selfsup.encoders` names each one's feature). "
            + (f"Rows marked *{frozen.RANDOM_LABEL}* carry no pretrained weights at all.\n" if any(
                frozen.weights_label(c.setting.get("weights", "")) == frozen.RANDOM_LABEL for c in references) else "\n")
        )
    matched = matched_temperature_table(configs, sets)
    region_tau, whole_tau = paper_pairing(_paper_methods()[0]) or (math.nan, math.nan)
    if matched:
        parts += [
            "\n## Region views against whole-image views, at matched temperature\n\n",
            f"Δ = region views − whole-image views, in points, {PAIRED}. "
            f"The paper's pairing (SAMCLR at τ {region_tau:g} against SimCLR at lightly's {whole_tau:g}, which its SimCLR "
            "may have used) changes the temperature and the views at once; the matched rows change "
            "the views alone.\n\n",
            matched,
        ]
    if any(c.purity for c in configs):
        parts += [
            "\n## View-pair purity against the KNN gain\n\n",
            f"*{PURITY_LABEL}*: P(both views of a draw show the same object, i.e. the instance covering most of each "
            "view is the same), in %, measured on the dataset's instance masks with each configuration's own sampler "
            "(masker, c, crops) before training (`masking.purity`); where each seed trains on regions of its own (a "
            "later round's, from its own source trial), the mean over the seeds. ρ: Spearman's rank correlation between it and "
            f"the mean KNN gain, over region configurations that differ only in masker and c (at least {MIN_CORRELATED}).\n\n",
        ]
        correlations = purity_correlations(configs, sets)
        parts.append(correlations or f"Fewer than {MIN_CORRELATED} region configurations share their other settings: no correlation.\n")
    paper = paper_table(sweep_name, configs, paper_file)
    if paper:
        parts += [
            "\n## Beside the SAMCLR paper\n\n",
            "The paper's top-1 (its Tables 1-3, `experiments/paper_results.yaml`) beside ours; ours − paper "
            "uses our last epoch. The reference code logs its linear probe's best epoch, so its linear "
            "numbers may be best-epoch ones: compare them with both of our columns.\n\n",
            paper,
        ]
        gain = paper_gain_table(sweep_name, configs, paper_file)
        if gain:
            parts += [f"\nSAMCLR − SimCLR, in points; ours {PAIRED}.\n\n", gain]
    parts.append("\n![KNN top-1 against epochs](knn_curves.png)\n")
    return "".join(parts)


def write_report(
    uri: str, experiment_id: str, parent_id: str, run_dir: str | Path | Location, sweep_name: str, paper_file: Path = PAPER_RESULTS
) -> list[Location]:
    """Write report.md, results.csv and knn_curves.png under ``run_dir/report`` (a local folder or a
    URI) and log them to the parent run (artifact folder ``report``)."""
    results = collect(uri, experiment_id, parent_id)
    configs, sets = configurations(results, read_purity(uri, parent_id)), eval_sets(results)
    files = {
        "report.md": render(sweep_name, results, configs, sets, paper_file).encode(),
        "results.csv": results_csv(configs, sets).encode(),
        "knn_curves.png": knn_figure(configs, sets),
    }
    folder = location(run_dir) / "report"
    for name, data in files.items():
        (folder / name).write_bytes(data)
    log_files(uri, parent_id, files, "report")
    return [folder / name for name in files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="the sweep YAML file, e.g. experiments/fashion_scenes.yaml")
    parser.add_argument("--run-dir", help="a run of the sweep (default: the newest under its storage folder)")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.sweep)
        storage = storage_location("storage", sweep.storage, Path.cwd())
        run_dir = location(args.run_dir) if args.run_dir else latest_run_dir(storage, sweep.name)
        if run_dir is None or not run_dir.is_dir():
            raise SweepError(f"{args.sweep}: no run of sweep {sweep.name!r} under {storage}")
        state = read_state(run_dir)
        paths = write_report(state["tracking_uri"], state["experiment_id"], state["parent_run_id"], run_dir, sweep.name)
    except (SweepError, TrackingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(paths[0].read_text())
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
