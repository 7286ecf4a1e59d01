"""Rounds: regions from a checkpoint of a trial of the same sweep (issue 15's "regions from the model itself").

A masker's ``params.checkpoint`` may name a trial instead of a file (the ``features`` masker,
``masking.maskers.features``)::

    maskers:
      own: {name: features, min_area: 100, params: {checkpoint: "trial:method=simclr", clusters: 4}}
    grid: {method: [simclr, samclr], masker: [own]}

The selector after ``trial:`` lists settings (``key=value``, comma-separated; the keys of
``Trial.params``, as MLflow shows them) that the source trial has. Unless the selector names them,
the source also has the referring trial's ``seed`` and ``dataset``: each seed's SAMCLR trial takes
the regions of the same seed's SimCLR trial. Exactly one trial must match; a trial cannot name
itself, and the source must train a backbone (not a ``frozen`` encoder).

The sweep then runs in rounds (``orchestrator.sweep``): round 1 is every trial whose regions need no
trial; when its trials have finished, the region stores of round 2 are computed from their last
checkpoints (Ray Data, as any store), and round 2's trials train on them, as a Tune experiment of
their own in the run folder (``round-2/``), and so on. ``--resume`` runs the rounds in order again:
finished trials are not rerun, and a store already computed is reused.

Such a store is named by the checkpoint's content (the SHA-256 of its file stands for the path in
the store's fingerprint, ``bind``): a new run whose source trial trains the same weights reuses it,
and a different checkpoint never does. Until it is bound, a round's store is named with
``trial:<source key>`` in the fingerprint (``MaskJob.store``, ``Trial.regions``): that name is what
``--resume`` identifies the trial's regions by, as for any store.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from masking.maskers import MaskerConfig
from masking.store import dataset_files, fingerprint, store_file
from orchestrator.config import SweepError
from orchestrator.rundirs import ROUND
from orchestrator.trial import CHECKPOINT
from orchestrator.trial_histories import reached_the_end
from samdata.storage import Location
from selfsup.methods import method_spec

PREFIX = "trial:"
TAG = "regions_from"
"""Tag of a later round's MLflow run: the trial whose checkpoint gave its regions."""


def names_a_trial(config: MaskerConfig) -> bool:
    """Whether the masker's checkpoint is a trial of the sweep (``trial:...``) rather than a file."""
    return str(config.params.get("checkpoint", "")).startswith(PREFIX)


def parse_selector(text: str, where: str) -> dict[str, str]:
    """``trial:method=simclr,temperature=0.5`` -> {"method": "simclr", "temperature": "0.5"}."""
    body = text[len(PREFIX):].strip()
    pairs = [part.strip() for part in body.split(",") if part.strip()]
    if not pairs or any("=" not in p for p in pairs):
        raise SweepError(f"{where}: {text!r} is not a trial selector; write trial:KEY=VALUE[,KEY=VALUE...], e.g. trial:method=simclr")
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}


def source_trial(trials: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]], trial: Any, text: str, where: str) -> str:
    """The key of the one trial of ``trials`` (key -> ``plan.Trial``; ``params``: key -> its
    ``Trial.params()``) that ``text`` selects for ``trial``."""
    wanted = {"seed": str(trial.train.seed), "dataset": str(trial.dataset), **parse_selector(text, where)}
    known = sorted({k for p in params.values() for k in p})
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise SweepError(f"{where}: {text!r} names unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    found = [key for key, p in params.items() if all(str(p.get(k)) == v for k, v in wanted.items())]
    shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
    if not found:
        raise SweepError(f"{where}: {text!r} matches no trial with {shown} (for trial {trial.key})")
    if len(found) > 1:
        raise SweepError(f"{where}: {text!r} matches {len(found)} trials with {shown} ({', '.join(found[:4])}); name more settings")
    source = trials[found[0]]
    if found[0] == trial.key:
        raise SweepError(f"{where}: {text!r} selects trial {trial.key} itself; its regions cannot come from its own checkpoint")
    if not method_spec(source.train.method).trains:
        raise SweepError(f"{where}: {text!r} selects trial {found[0]}, a frozen encoder with no checkpoint of its own training")
    return found[0]


def resolve_sources(trials: dict[str, Any], configs: dict[str, MaskerConfig]) -> tuple[dict[str, Any], dict[str, MaskerConfig]]:
    """Each trial whose masker names a trial gets its source (``Trial.after``), and its masker
    configuration the source's key (``trial:<key>``) instead of the selector; then every trial's
    round is checked (``round_numbers``)."""
    trials, configs = dict(trials), dict(configs)
    referring = [key for key, config in configs.items() if names_a_trial(config)]
    params = {key: t.params() for key, t in trials.items()} if referring else {}  # once, not per referring trial
    for key in referring:
        config, t = configs[key], trials[key]
        source = source_trial(trials, params, t, str(config.params["checkpoint"]), f"maskers.{t.masker}.params.checkpoint")
        configs[key] = dataclasses.replace(config, params={**config.params, "checkpoint": PREFIX + source})
        trials[key] = dataclasses.replace(t, after=source)
    round_numbers(trials.values())
    return trials, configs


def round_numbers(trials) -> dict[str, int]:
    """Trial key -> its round: 1, or one more than the round of the trial its regions come from."""
    after = {t.key: t.after for t in trials}
    out: dict[str, int] = {}

    def number(key: str, chain: tuple[str, ...]) -> int:
        if key in chain:
            raise SweepError(f"maskers: trial checkpoints form a cycle: {' -> '.join((*chain, key))}")
        if key not in out:
            out[key] = 1 if after[key] is None else 1 + number(after[key], (*chain, key))
        return out[key]

    for key in after:
        number(key, ())
    return out


def by_round(trials) -> list[list[Any]]:
    """The trials, round by round (round 1 first)."""
    trials = list(trials)
    numbers = round_numbers(trials)
    return [[t for t in trials if numbers[t.key] == n] for n in range(1, max(numbers.values(), default=1) + 1)]


def experiment_name(number: int) -> str:
    """Round ``number`` >= 2's Tune experiment, a folder of the run (``rundirs.experiment_dirs``)."""
    return f"{ROUND}{number}"


def source_checkpoints(trials, histories: Mapping[str, Any], run_id: Callable[[str], str]) -> tuple[dict[str, Location], list[str]]:
    """The last checkpoint file of each source of ``trials`` (a later round's) that reached its last
    epoch, and the sources that did not (the round waits for them). ``histories``: run id ->
    ``trial_histories.checkpointed_histories``' entry; ``run_id``: a trial key's MLflow run id."""
    checkpoints, waiting = {}, []
    for source in dict.fromkeys(t.after for t in trials):
        history = histories.get(run_id(source))
        if reached_the_end(history):
            checkpoints[source] = history["checkpoint"] / CHECKPOINT
        else:
            waiting.append(source)
    return checkpoints, waiting


def bind(job: Any, checkpoint: Location, datasets: Mapping[str, Any], regions_dir: Location) -> Any:
    """``job`` (a ``plan.MaskJob`` whose masker names a trial) made runnable: its masker reads
    ``checkpoint`` (a path or URI, read where the actors run), and its store is named by the
    checkpoint's content (module docstring)."""
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:16]
    named = dataclasses.replace(job.config, params={**job.config.params, "checkpoint": f"sha256:{digest}"})
    dataset = datasets[job.dataset]
    store = store_file(regions_dir, job.dataset, job.masker, fingerprint(dataset_files(dataset.images, dataset.paths), named.as_dict()))
    config = dataclasses.replace(job.config, params={**job.config.params, "checkpoint": str(checkpoint)})
    return dataclasses.replace(job, config=config, store=store)
