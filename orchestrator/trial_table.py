"""The trials on the console: a Tune callback that prints a compact table while they run.

Only the grid axes whose values differ between trials are columns (``varying_axes``), then the
trial's status, its epoch and its latest KNN top-1 per eval set, as ``orchestrator.console`` shows
it (Tune's own status table, every trial's full configuration, goes to the log file). Tune pickles
its callbacks with the run: ``TrialTable`` holds plain data and prints through the active console.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from orchestrator.console import EVERY_S, say, table

KNN_PREFIX = "knn_top1/"


def varying_axes(plan: Any) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The sweep's axes with more than one value (grid axes, ``dataset``, ``seed``) that tell the
    plan's trials apart (the names of the trial keys, ``orchestrator.plan``), and per trial key its
    values of them (``-`` where a trial ignores the axis, e.g. ``c`` or ``masker`` of SimCLR)."""
    sweep = plan.sweep
    lists = {**{k: v for k, v in sweep.grid.items()}, "dataset": list(sweep.datasets), "seed": list(sweep.seeds)}
    params = {t.key: t.params() for t in plan.trials}
    axes = [
        k for k, v in lists.items()
        if len(v) > 1 and len({str(p.get(k, "-")) for p in params.values()}) > 1
    ]
    axes = ["method", *[k for k in axes if k != "method"]]  # a row names its method even when all trials share it
    return axes, {key: {k: str(p.get(k, "-")) for k in axes} for key, p in params.items()}


class TrialTable(Callback):
    """Tune callback: the trials as a small table (axes that vary, status, epoch/epochs, latest KNN
    top-1 per eval set), printed on the console at most every ``EVERY_S`` seconds when something
    changed and whenever a trial ends; a failed trial's error in full."""

    def __init__(self, axes: list[str], values: dict[str, dict[str, str]], epochs: dict[str, int], every_s: float = EVERY_S):
        self.axes, self.values, self.epochs, self.every_s = axes, values, epochs, every_s
        self.state: dict[str, dict[str, Any]] = {k: {"status": "pending", "epoch": 0, "knn": {}} for k in values}
        self.last_shown = 0.0
        self.changed = False

    @classmethod
    def of(cls, plan: Any) -> TrialTable:
        axes, values = varying_axes(plan)
        return cls(axes, values, {t.key: t.train.epochs for t in plan.trials})

    def render(self) -> str:
        sets = sorted({s for st in self.state.values() for s in st["knn"]})
        header = [*self.axes, "status", "epoch", *[f"knn {s}" for s in sets]]
        rows = []
        for key, st in self.state.items():
            knn = [f"{st['knn'][s]:.3f}" if s in st["knn"] else "-" for s in sets]
            rows.append([*self.values[key].values(), st["status"], f"{st['epoch']}/{self.epochs.get(key, '?')}", *knn])
        return table(header, rows)

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.changed and (force or now - self.last_shown >= self.every_s):
            say(self.render())
            self.last_shown, self.changed = now, False

    @staticmethod
    def _key(trial: Any) -> str:
        return trial.config["trial"]["key"]

    @staticmethod
    def _take(st: dict[str, Any], result: dict) -> None:
        st["epoch"] = int(result.get("epoch", st["epoch"]))
        st["knn"].update({k[len(KNN_PREFIX):]: float(v) for k, v in result.items() if k.startswith(KNN_PREFIX)})

    def _sync(self, trials: list) -> None:
        """Trials a resumed run finished before (Tune restores them as TERMINATED and starts them no more)."""
        for t in trials:
            st = self.state.get(self._key(t))
            if st is not None and st["status"] == "pending" and getattr(t, "status", None) == "TERMINATED":
                st["status"] = "done"
                self._take(st, getattr(t, "last_result", None) or {})

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._sync(trials)
        key = self._key(trial)
        if key in self.state and self.state[key]["status"] == "pending":
            self.state[key]["status"] = "running"
            self.changed = True
            if all(st["status"] != "pending" for st in self.state.values()):
                self._show(force=True)  # every trial placed: the first table

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._sync(trials)
        st = self.state.setdefault(self._key(trial), {"status": "running", "epoch": 0, "knn": {}})
        st["status"] = "running"
        self._take(st, result)
        self.changed = True
        self._show()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.state[self._key(trial)]["status"] = "done"
        self.changed = True
        self._show(force=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        say(f"trial {self._key(trial)}: its worker failed; Tune restarts it from its last checkpoint ({_error_line(trial)})")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.state[self._key(trial)]["status"] = "failed"
        self.changed = True
        say(f"trial {self._key(trial)} failed:\n{_error_text(trial)}")
        self._show(force=True)


def _error_text(trial: Any) -> str:
    """A failed trial's whole error as Tune saved it (its traceback)."""
    path = getattr(trial, "error_file", None)
    try:
        if path:
            return Path(path).read_text().rstrip()
    except OSError:
        pass
    return str(getattr(trial, "error_msg", None) or "no error text saved by Tune")


def _error_line(trial: Any) -> str:
    lines = [line for line in _error_text(trial).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error text"
