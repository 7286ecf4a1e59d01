"""``python -m orchestrator.report SWEEP.yaml``: a sweep's results the way a paper shows them.

Read back from MLflow (the sweep's parent run and its child runs), written under
``<run dir>/report/`` and logged as artifacts of the parent run (``report/``):

- ``report.md``: the paper-style table (one row per configuration, KNN and linear top-1 per eval
  set, mean ± std over seeds, in %); the untrained network's scores when the sweep evaluated it
  (``eval.at_start``); when the grid has several temperatures, the comparison of region views with
  whole-image views at *matched* temperatures beside the paper's pairing (SAMCLR at 0.07 against
  SimCLR at 0.5, which mixes the view sampling with the temperature); and, for the paper's own
  tables, the paper's numbers beside ours.
- ``results.csv``: the same numbers, one row per configuration and eval set.
- ``knn_curves.png``: KNN top-1 against epochs per eval set (like the paper's Figure 2), mean over
  seeds with a ± std band.

It also runs at the end of every sweep.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from masking.storage import Location, location
from orchestrator.config import SweepError, load_sweep
from orchestrator.rundirs import latest_run_dir, read_state, storage_location
from orchestrator.tracking import TrackingError, child_runs, log_files, metric_history

NOT_A_SETTING = ("seed", "workers", "device")
"""Params that do not define a configuration: rows are averaged over these."""
KNN, LINEAR = "knn_top1/", "linear_top1/"
PAPER_RESULTS = Path(__file__).resolve().parent.parent / "experiments" / "paper_results.yaml"
"""The SAMCLR paper's numbers, keyed by sweep name (table1, table2, table3)."""


@dataclass
class TrialResult:
    """One child run: its settings and its curves (eval set -> {epoch: top-1})."""

    params: dict[str, str]
    status: str
    knn: dict[str, dict[int, float]] = field(default_factory=dict)
    linear: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def setting(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in self.params.items() if k not in NOT_A_SETTING))

    def final(self, metric: str, eval_set: str) -> float | None:
        """The last point of a curve, after training (epoch 0 is the untrained network)."""
        curve = (self.knn if metric == "knn" else self.linear).get(eval_set, {})
        trained = [e for e in curve if e > 0]
        return curve[max(trained)] if trained else None


@dataclass(frozen=True)
class Stat:
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    def text(self) -> str:
        if not self.values:
            return "–"
        return f"{100 * self.mean:.1f} ± {100 * self.std:.1f}" if len(self.values) > 1 else f"{100 * self.mean:.1f}"


@dataclass
class Configuration:
    """Every trial of one setting (all seeds)."""

    setting: dict[str, str]
    trials: list[TrialResult]
    label: str = ""

    def stat(self, metric: str, eval_set: str) -> Stat:
        values = [t.final(metric, eval_set) for t in self.trials]
        return Stat(tuple(v for v in values if v is not None))

    def curve(self, eval_set: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Epochs, mean and std of KNN top-1 over the seeds that reached each epoch."""
        points: dict[int, list[float]] = defaultdict(list)
        for t in self.trials:
            for epoch, value in t.knn.get(eval_set, {}).items():
                points[epoch].append(value)
        epochs = np.array(sorted(points))
        return epochs, np.array([np.mean(points[e]) for e in epochs]), np.array([np.std(points[e]) for e in epochs])


def collect(uri: str, experiment_id: str, parent_id: str) -> list[TrialResult]:
    """Every child run of the sweep's parent run, with its KNN and linear curves."""
    results = []
    for run in child_runs(uri, experiment_id, parent_id):
        result = TrialResult(dict(run.data.params), run.info.status)
        for name in run.data.metrics:
            for prefix, curves in ((KNN, result.knn), (LINEAR, result.linear)):
                if name.startswith(prefix):
                    curves[name[len(prefix) :]] = metric_history(uri, run.info.run_id, name)
        results.append(result)
    return results


def configurations(results: Iterable[TrialResult]) -> list[Configuration]:
    """Trials grouped by setting, labelled by the settings that vary across the sweep."""
    groups: dict[tuple, list[TrialResult]] = defaultdict(list)
    for r in results:
        groups[r.setting].append(r)
    configs = [Configuration(dict(k), v) for k, v in groups.items()]
    varying = [k for k in sorted({k for c in configs for k in c.setting}) if len({c.setting.get(k) for c in configs}) > 1]
    order = ["method", "sampling", "masker", "c", "temperature"]
    varying.sort(key=lambda k: (order.index(k) if k in order else len(order), k))
    for c in configs:
        parts = [c.setting.get("method", "?")] + [
            f"{_short(k)}={c.setting.get(k)}" for k in varying if k != "method" and c.setting.get(k, "-") != "-"
        ]
        c.label = " ".join(parts)
    return sorted(configs, key=lambda c: _sort_key(c.setting))


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
    return sorted({s for r in results for s in (*r.knn, *r.linear)})


def untrained(results: Sequence[TrialResult], metric: str, eval_set: str) -> Stat:
    """Epoch-0 scores, one per seed (the untrained backbone depends on the seed only)."""
    by_seed: dict[str, float] = {}
    for r in results:
        value = (r.knn if metric == "knn" else r.linear).get(eval_set, {}).get(0)
        if value is not None:
            by_seed.setdefault(r.params.get("seed", ""), value)
    return Stat(tuple(by_seed.values()))


def results_table(configs: Sequence[Configuration], sets: Sequence[str], results: Sequence[TrialResult]) -> str:
    header = ["configuration", "seeds"] + [f"{m} {s}" for s in sets for m in ("KNN", "linear")]
    rows = [[c.label, str(len(c.trials))] + [c.stat(m, s).text() for s in sets for m in ("knn", "linear")] for c in configs]
    start = {(m, s): untrained(results, m, s) for s in sets for m in ("knn", "linear")}
    if any(start["knn", s].values for s in sets):
        seeds = max(len(start["knn", s].values) for s in sets)
        rows.append(["untrained network (epoch 0)", str(seeds)] + [start[m, s].text() for s in sets for m in ("knn", "linear")])
    return _markdown(header, rows)


def _baseline(config: Configuration, configs: Sequence[Configuration], temperature: str) -> Configuration | None:
    """The whole-image-view twin of a region-view configuration at ``temperature``: same settings
    but random sampling (SAMCLR's twin is SimCLR), masker and c not applying."""
    method = "simclr" if config.setting.get("method") == "samclr" else config.setting.get("method")
    ignore = {"method", "sampling", "masker", "c", "temperature"}
    for other in configs:
        s = other.setting
        if s.get("sampling") == "random" and s.get("method") == method and s.get("temperature") == temperature:
            if all(s.get(k) == v for k, v in config.setting.items() if k not in ignore):
                return other
    return None


def matched_temperature_table(configs: Sequence[Configuration], sets: Sequence[str]) -> str | None:
    """Region views against whole-image views at the same temperature, and at the paper's pairing
    (SAMCLR 0.07, SimCLR 0.5); None when the sweep has a single temperature."""
    temperatures = sorted({c.setting.get("temperature") for c in configs}, key=lambda t: float(t) if _is_number(t) else math.inf)
    if len(temperatures) < 2:
        return None
    header = ["comparison", "region views", "whole-image views"] + [f"Δ KNN {s}" for s in sets] + [f"Δ linear {s}" for s in sets]
    rows = []
    for config in configs:
        if config.setting.get("sampling") != "regions":
            continue
        pairs = [("matched τ", config.setting.get("temperature"))]
        if config.setting.get("temperature") == "0.07" and "0.5" in temperatures:
            pairs.append(("paper's pairing", "0.5"))
        for kind, temperature in pairs:
            base = _baseline(config, configs, str(temperature))
            if base is None:
                continue
            deltas = [_delta(config.stat(m, s), base.stat(m, s)) for m in ("knn", "linear") for s in sets]
            rows.append([kind, config.label, base.label, *deltas])
    return _markdown(header, rows) if rows else None


def _delta(a: Stat, b: Stat) -> str:
    """Difference of means in points, with the standard error of the difference over seeds."""
    if not a.values or not b.values:
        return "–"
    diff = 100 * (a.mean - b.mean)
    if len(a.values) > 1 and len(b.values) > 1:
        se = 100 * math.sqrt(a.std**2 / len(a.values) + b.std**2 / len(b.values))
        return f"{diff:+.1f} ± {se:.1f}"
    return f"{diff:+.1f}"


def _is_number(v: str | None) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def paper_table(sweep_name: str, configs: Sequence[Configuration], paper_file: Path = PAPER_RESULTS) -> str | None:
    """Ours beside the paper's numbers (``paper_file``: sweep name -> method -> "knn/<set>" or
    "linear/<set>" -> top-1 in %); None when the paper has no table of this name."""
    if not paper_file.is_file():
        return None
    paper = (yaml.safe_load(paper_file.read_text()) or {}).get(sweep_name)
    if not paper:
        return None
    rows = []
    for method, numbers in paper.items():
        ours = [c for c in configs if c.setting.get("method") == method]
        for key, value in sorted((numbers or {}).items()):
            metric, eval_set = key.split("/", 1)
            stat = ours[0].stat(metric, eval_set) if len(ours) == 1 else Stat(())
            ours_text = stat.text() if len(ours) == 1 else ("several configurations" if ours else "not run")
            paper_text = "n/a" if value is None else f"{float(value):.1f}"
            diff = f"{100 * stat.mean - float(value):+.1f}" if stat.values and value is not None else "–"
            rows.append([method, key, ours_text, paper_text, diff])
    return _markdown(["method", "metric", "ours", "paper", "ours − paper"], rows)


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def results_csv(configs: Sequence[Configuration], sets: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["configuration", "eval_set", "metric", "mean", "std", "seeds", *sorted({k for c in configs for k in c.setting})])
    keys = sorted({k for c in configs for k in c.setting})
    for c in configs:
        for s in sets:
            for m in ("knn", "linear"):
                stat = c.stat(m, s)
                if stat.values:
                    writer.writerow([c.label, s, m, f"{stat.mean:.4f}", f"{stat.std:.4f}", len(stat.values), *(c.setting.get(k, "") for k in keys)])
    return out.getvalue()


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


def render(
    sweep_name: str,
    results: Sequence[TrialResult],
    configs: Sequence[Configuration],
    sets: Sequence[str],
    paper_file: Path = PAPER_RESULTS,
) -> str:
    """The report's Markdown; ``configs`` and ``sets``: ``configurations(results)``, ``eval_sets(results)``."""
    unfinished = [r for r in results if r.status != "FINISHED"]
    parts = [f"# Results of sweep `{sweep_name}`\n\n", f"{len(results)} trials, {len(configs)} configurations; top-1 in %, mean ± std over seeds.\n"]
    if unfinished:
        parts.append(f"**{len(unfinished)} trial(s) did not finish** (status {', '.join(sorted({r.status for r in unfinished}))}); their last logged points are used.\n")
    parts += ["\n## Paper-style table\n\n", results_table(configs, sets, results)]
    matched = matched_temperature_table(configs, sets)
    if matched:
        parts += [
            "\n## Region views against whole-image views, at matched temperature\n\n",
            "Δ = region views − whole-image views, in points (± standard error over seeds). "
            "The paper's pairing (SAMCLR at τ 0.07 against SimCLR at lightly's 0.5) changes the "
            "temperature and the views at once; the matched rows change the views alone.\n\n",
            matched,
        ]
    paper = paper_table(sweep_name, configs, paper_file)
    if paper:
        parts += ["\n## Beside the SAMCLR paper\n\n", paper]
    parts.append("\n![KNN top-1 against epochs](knn_curves.png)\n")
    return "".join(parts)


def write_report(
    uri: str, experiment_id: str, parent_id: str, run_dir: str | Path | Location, sweep_name: str, paper_file: Path = PAPER_RESULTS
) -> list[Location]:
    """Write report.md, results.csv and knn_curves.png under ``run_dir/report`` (a local folder or a
    URI) and log them to the parent run (artifact folder ``report``)."""
    results = collect(uri, experiment_id, parent_id)
    configs, sets = configurations(results), eval_sets(results)
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
