"""``--resume``: does the sweep file still describe the run being resumed, and what does it add?

A run keeps a copy of its sweep file (``sweep.yaml``) and, in its state file, one identity per
trial (``trial_identity``: the trial's settings, its region store and the evaluation). ``--resume``
compares the sweep file with that copy: identical (after validation and defaults) -> resume;
different -> one line naming the changed keys. With ``--allow-changes`` a change is accepted when
every trial of the run is still planned exactly as it was (same identity) -- e.g. ``resources``
edits, a seed or a grid value appended: the old trials keep their names (a new ``seeds`` axis
would rename ``simclr`` to ``simclr,seed=0``) and are resumed or kept, and the trials the run does
not have yet are *added*: they run as a Tune experiment of their own, ``added-N/`` inside the run
folder (Tune cannot add trials to a restored grid), under the same MLflow parent run. A change
that alters or removes an old trial is one line naming the changed keys and the trials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from samdata.storage import Location
from orchestrator.config import SweepConfig, SweepError, parse_sweep
from orchestrator.plan import Plan, Trial, make_plan
from orchestrator.rundirs import addition_dir, read_state, write_state
from orchestrator.smoke import smoke_sweep

COPY = "sweep.yaml"
"""The run's copy of the sweep file it was planned from (the latest accepted one)."""


@dataclass(frozen=True)
class Resumed:
    plan: Plan
    """The sweep's plan, with every trial the run has under the name the run gave it."""
    added: tuple[str, ...] = ()
    """Keys of the planned trials the run does not have yet (only with ``--allow-changes``)."""
    changed: tuple[str, ...] = ()
    """The sweep-file keys that differ from the run's copy."""


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: value}


def changed_keys(old: SweepConfig, new: SweepConfig) -> list[str]:
    """The dotted keys whose values differ between two sweep files (after validation and defaults)."""
    a, b = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    return sorted(k for k in a.keys() | b.keys() if a.get(k, ...) != b.get(k, ...))


def trial_identity(plan: Plan, trial: Trial) -> str:
    """What a trial trains and measures, whatever its name: its settings (``Trial.params``), its
    regions (``Trial.regions``: the store named by the fingerprint of the dataset's files and the
    masker's settings at the trial's own ``min_area``), its evaluation settings and the eval sets.
    Two trials with one identity are the same trial. The values of setting axes (``eval.knn_k``,
    ``maskers.fz.min_area``) count through the evaluation and the regions, not as params: a value
    written in ``maskers`` or ``eval`` and the same value as a one-valued grid axis are one trial."""
    params = {k: v for k, v in trial.params().items() if k not in trial.settings}
    regions = trial.regions or trial.store
    data = {
        "params": params,
        "store": str(regions) if regions else None,
        "eval": dataclasses.asdict(trial.eval),
        "eval_sets": [dataclasses.asdict(e) for e in plan.eval_sets],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trial_identities(plan: Plan) -> dict[str, str]:
    """Trial key -> identity, for the run's state file."""
    return {t.key: trial_identity(plan, t) for t in plan.trials}


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")


def check_resume(
    run_dir: Location, sweep: SweepConfig, plan: Plan, sweep_file: str, allow_changes: bool, smoke: bool = False
) -> Resumed:
    """Raise SweepError (one line) unless the sweep file may resume ``run_dir``; else the plan with the
    run's trial names and the trials it adds (see the module docstring)."""
    copy = run_dir / COPY
    if not copy.is_file():
        return Resumed(plan)  # a run from before the copy was kept: nothing to compare with
    old = parse_sweep(copy.read_text(), str(copy))
    if smoke:
        old = smoke_sweep(old)
    changed = changed_keys(old, sweep)
    if changed and not allow_changes:
        raise SweepError(
            f"--resume: {sweep_file} differs from the run's copy {copy} in {_shown(changed)}; undo the changes, run it as a new run "
            "(without --resume), or add --allow-changes if every old trial stays as it was"
        )
    state = read_state(run_dir)
    if not changed and "trials" not in state:
        return Resumed(plan)
    run_trials: dict[str, str] = state.get("trials") or trial_identities(make_plan(old))  # runs from before identities were kept
    planned = {trial_identity(plan, t): t for t in plan.trials}
    gone = [key for key, identity in run_trials.items() if identity not in planned]
    if gone:
        if changed:
            raise SweepError(
                f"--resume --allow-changes: the changes to {_shown(changed)} alter or remove trial(s) {', '.join(gone[:5])}; "
                "start a new run (without --resume)"
            )
        raise SweepError(
            f"--resume: trial(s) {', '.join(gone[:5])} of {run_dir} are planned differently from the same sweep file now "
            "(a dataset's files or a masker's region store changed, or a relative path resolves elsewhere); start a new run"
        )
    name_of = {identity: key for key, identity in run_trials.items()}
    renamed = {t.key: name_of.get(identity, t.key) for identity, t in planned.items()}
    trials = tuple(dataclasses.replace(t, key=renamed[t.key], after=renamed.get(t.after)) for t in planned.values())
    jobs = tuple(dataclasses.replace(j, after=renamed.get(j.after)) for j in plan.mask_jobs)
    added = tuple(renamed[t.key] for identity, t in planned.items() if identity not in name_of)
    return Resumed(dataclasses.replace(plan, trials=trials, mask_jobs=jobs), added, tuple(changed))


def accept_changes(run_dir: Location, state: dict[str, Any], resumed: Resumed, sweep_text: bytes) -> str | None:
    """Make the changes ``--allow-changes`` accepted part of the run: the state file gets the added
    trials (with their Tune experiment, ``added-N``) and every trial's identity, then the sweep file
    becomes the run's copy, which the next ``--resume`` compares with (the copy before additions is
    kept as ``sweep.before-added-N.yaml``). The state is written first: a driver killed in between
    leaves a run whose next ``--resume --allow-changes`` adds nothing twice. Returns the added
    experiment's name (None when nothing was added)."""
    name = None
    if resumed.added:
        additions = state.setdefault("additions", [])
        name = addition_dir(len(additions) + 1)
        additions.append({"name": name, "trials": list(resumed.added)})
        state["finished"] = False
        copy = run_dir / COPY
        if copy.is_file():
            (run_dir / f"sweep.before-{name}.yaml").write_bytes(copy.read_bytes())
    state["trials"] = trial_identities(resumed.plan)
    write_state(run_dir, state)
    (run_dir / COPY).write_bytes(sweep_text)
    return name
