"""``python -m orchestrator.sweep SWEEP.yaml``: the whole pipeline, from one YAML file.

validate -> plan -> (``--dry-run`` stops here) -> MLflow experiment -> Ray -> region stores
(Ray Data) -> view-pair purity (datasets with instance masks; ``orchestrator.purity``) -> parent
and child runs -> image caches of ``input: gpu`` trials, once per sweep, into Ray's object store
(``orchestrator.shared_caches``) -> Ray Tune grid of trials -> summary table and report.

``--resume`` continues the newest run of this sweep (``Tuner.restore``: finished trials are not
rerun, unfinished ones restart from their last checkpoint, with the same MLflow runs);
``--resume --allow-changes`` also runs the trials an edited sweep file adds (``orchestrator.resume``).
``--address`` joins an existing Ray cluster instead of starting a local one: this checkout's
``orchestrator``, ``masking`` and ``selfsup`` travel to every node with the job (Ray's
``py_modules``); ``storage`` and ``regions_dir`` must then be shared (a URI, or a folder every node
mounts), and so must the tracking store: ``tracking.uri`` is required (an MLflow server, or a
SQLite file on a shared folder, with a warning).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from samdata.storage import Location
from orchestrator import purity, rounds
from orchestrator.config import SweepError, load_sweep
from orchestrator.console import Console, show_plan, tune_verbosity, use_run_folder
from orchestrator.readable_images import MASKER_ERROR
from orchestrator.plan import Plan, check_batch_size, describe, make_plan
from orchestrator.previews import log_previews
from orchestrator.resume import COPY, accept_changes, check_resume, trial_identities
from orchestrator.rundirs import latest_run_dir, new_run_dir, read_state, write_state
from orchestrator.smoke import smoke_sweep
from orchestrator.summary import (
    SKIPPED,
    Skipped,
    markdown,
    skipped_examples,
    skipped_markdown,
    summary_rows,
    write_summary,
)
from orchestrator.tracking import (
    TrackingError,
    child_run,
    child_runs,
    close_trial_run,
    default_uri,
    finish_run,
    log_files,
    log_metrics,
    open_experiment,
    runs_page,
    set_tag,
    start_sweep,
)
from orchestrator.trial import gpu_memory_share


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def training_images(plan: Plan, skipped: Skipped) -> dict[str, list[str]]:
    """Dataset -> the images every trial of it trains on: the plan's file list (listed once, at
    planning) less the images left out (unreadable, or failed by a masker of that dataset)."""
    return {name: [p for p in d.paths if p not in skipped.get(name, {})] for name, d in plan.datasets.items()}


def left_out(dataset: str, unreadable: dict[str, str], stores: list) -> dict[str, str]:
    """Relative path -> reason, for every image no trial of ``dataset`` trains on: the unreadable ones
    and those any masker of the dataset failed on (after its retries).

    Why drop a masker's failures from *every* arm of the dataset rather than give them whole-image
    views: an arm comparison (SAMCLR vs its SimCLR twin, one masker vs another) must differ in the
    sampling only. Whole-image views in a "regions" arm would quietly mix the two samplings, in a
    proportion that depends on the masker; dropping the image from all arms keeps every arm on the
    same images and the regions arms purely region-sampled. They are counted and named with the
    unreadable images (``skipped_images``)."""
    out = dict(unreadable)
    for store in stores:
        for path, error in store.errors.items():
            if error.startswith(MASKER_ERROR):
                out.setdefault(path, error)
    return dict(sorted(out.items()))


def write_image_lists(run_dir: Location, images: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Each dataset's training images as ``images/<dataset>.json`` in the run folder (shipped with
    the trials, so a resumed or restarted trial trains on the same list); dataset -> (file, sha256).
    A list the run has already is kept as it is (a resumed run adding trials: see ``run_image_lists``)."""
    out = {}
    for name, paths in images.items():
        file = run_dir / "images" / f"{name}.json"
        if file.is_file():
            data = file.read_bytes()
        else:
            data = json.dumps(paths).encode()
            file.write_bytes(data)
        out[name] = (str(file), hashlib.sha256(data).hexdigest())
    return out


def run_image_lists(run_dir: Location, images: dict[str, list[str]], skipped: Skipped, log) -> dict[str, list[str]]:
    """Resuming: each dataset's images as the run fixed them at planning, where it has a list (every
    trial of a dataset, old or added by ``--allow-changes``, trains on one list); a warning names the
    listed images this run's region stage left out since (they are trained on as planned, with
    whole-image views where a masker failed on them)."""
    out = dict(images)
    for name in images:
        file = run_dir / "images" / f"{name}.json"
        if file.is_file():
            out[name] = json.loads(file.read_bytes())
            bad = [p for p in out[name] if p in skipped.get(name, {})]
            if bad:
                log(
                    f"warning: dataset {name}: {len(bad)} image(s) of the run's list {file} were left out by this run's "
                    f"region stage (e.g. {bad[0]}: {skipped[name][bad[0]]}); the run's trials keep training on its list"
                )
    return out


def _trial_spec(plan: Plan, trial, uri: str, run_id: str, lists: dict[str, tuple[str, str]]) -> dict[str, Any]:
    dataset = plan.datasets[trial.dataset]
    return {
        "key": trial.key,
        "images": str(dataset.images),
        "image_list": lists[trial.dataset][0],
        "image_list_sha256": lists[trial.dataset][1],
        "store": str(trial.store) if trial.store else None,  # a path or URI: parsed again on the worker
        "min_area": trial.min_area,  # the store may hold smaller regions (a min_area axis shares one store)
        "train": dataclasses.asdict(trial.train),
        "eval": dataclasses.asdict(trial.eval),
        "eval_sets": [dataclasses.asdict(e) for e in plan.eval_sets],
        "cpus": plan.sweep.resources.cpu,
        "gpu_memory_share": gpu_memory_share(plan.sweep.resources.gpu),
        "tracking_uri": uri,
        "run_id": run_id,
    }


def view_pair_purity(plan: Plan, stores: dict, images: dict[str, list[str]], log) -> list[dict[str, Any]]:
    """``orchestrator.purity.measure`` for the datasets with instance masks; a diagnostic, so a
    failure is logged and the sweep goes on without it."""
    from masking.purity import PurityError

    try:
        return purity.measure(plan, stores, images, log=log)
    except (PurityError, OSError) as err:
        log(f"warning: view-pair purity not measured ({err})")
        return []


def ray_is_up() -> bool:
    """Whether this process is connected to Ray (without importing it)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def shutdown_ray() -> None:
    """Disconnect from Ray (and stop the local cluster this process started); a failure is printed,
    never raised over the sweep's own outcome."""
    import ray

    try:
        ray.shutdown()
    except Exception as err:  # noqa: BLE001 - shutting down must not hide the sweep's own outcome
        print(f"ray.shutdown failed: {err}", file=sys.stderr)


def ray_init_kwargs(address: str | None) -> dict[str, Any]:
    """How the sweep starts Ray: joining a cluster as it is, or a local instance without the
    dashboard (were it turned on, it would listen on 127.0.0.1 only, never on every interface)."""
    if address:
        import masking
        import orchestrator
        import selfsup

        # the packages travel with the job: the cluster's nodes need not have this checkout
        return {"address": address, "runtime_env": {"py_modules": [orchestrator, masking, selfsup]}}
    return {"include_dashboard": False, "dashboard_host": "127.0.0.1"}


def _init_ray(address: str | None) -> Any:
    """Start (or join) Ray unless it runs already; the RayContext, or None when it was running."""
    import ray

    if ray.is_initialized():
        return None
    return ray.init(**ray_init_kwargs(address))


def _check_resources(plan: Plan, address: str | None) -> None:
    res = plan.sweep.resources
    if address is None and (res.gpu > 0 or res.mask_gpu > 0):
        import torch

        if not torch.cuda.is_available():
            raise SweepError("resources: gpu > 0, but this machine has no CUDA GPU (use gpu: 0, or --address a cluster with GPUs)")


def _check_tracking(uri: str | None, address: str | None, log) -> None:
    """With ``--address`` trials run on other machines: the tracking store must be shared."""
    if address is None:
        return
    if uri is None:
        raise SweepError(
            f"tracking.uri: --address runs trials on other machines, which cannot reach the default {default_uri()}; "
            "give tracking: {uri: http://HOST:5000} (an MLflow server) or a sqlite:/// file on a folder every node mounts"
        )
    if uri.startswith("sqlite:"):
        log(
            f"warning: tracking.uri {uri} is a SQLite file: every node must see it at that path, and SQLite on a network "
            "file system can lock or corrupt under concurrent trials; an MLflow server (http://...) is safer on a cluster"
        )


def run_sweep(
    sweep_file: str, resume: bool = False, address: str | None = None, dry_run: bool = False, smoke: bool = False, log=print,
    allow_changes: bool = False,
) -> int:
    """Run a sweep; returns the number of trials that did not finish (0 is success)."""
    sweep = load_sweep(sweep_file)
    if smoke:
        sweep = smoke_sweep(sweep)
    plan = make_plan(sweep, dry_run=dry_run)
    if dry_run:
        log(describe(plan))
        return 0
    show_plan(plan, log)
    _check_resources(plan, address)
    _check_tracking(sweep.tracking.uri, address, log)
    run_dir = latest_run_dir(plan.storage, sweep.name) if resume else None
    if resume and run_dir is None:
        raise SweepError(f"--resume: no earlier run of sweep {sweep.name!r} under {plan.storage}")
    if run_dir is not None:
        resumed = check_resume(run_dir, sweep, plan, sweep_file, allow_changes, smoke)
        plan = resumed.plan  # the run's trials under the names it gave them
    later_rounds = rounds.by_round(plan.trials)[1:]  # trials whose regions come from trials of an earlier round
    later = {t.key for r in later_rounds for t in r}
    if run_dir is not None and later.intersection(resumed.added):
        raise SweepError(
            f"--resume --allow-changes: trial(s) {', '.join(k for k in resumed.added if k in later)} would be added to a later round "
            "(their regions come from a trial's checkpoint), which a run cannot take on yet; start a new run (without --resume)"
        )
    uri = sweep.tracking.uri or default_uri()
    experiment_id = open_experiment(uri, sweep.tracking.experiment or sweep.name)

    from ray import tune

    from orchestrator.readable_images import unreadable_images
    from orchestrator.region_stage import compute_store
    from orchestrator.shared_caches import put_image_caches
    from orchestrator.trial import run_trial
    from orchestrator.trial_histories import checkpointed_histories, reached_the_end
    from orchestrator.trial_table import TrialTable

    _init_ray(address)
    res = sweep.resources
    first = dataclasses.replace(
        plan, trials=tuple(t for t in plan.trials if t.key not in later), mask_jobs=tuple(j for j in plan.mask_jobs if not j.after)
    )
    stores: dict[str, list] = {name: [] for name in plan.datasets}
    job_stores = {}  # store file -> RegionStore
    for job in first.mask_jobs:
        job_stores[str(job.store)] = compute_store(job, plan.datasets[job.dataset], res.mask_actors, res.mask_gpu, res.mask_batch_size, log=log)
        stores[job.dataset].append(job_stores[str(job.store)])
    skipped = {
        name: left_out(name, unreadable_images(dataset, plan.regions_dir, stores[name]), stores[name])
        for name, dataset in plan.datasets.items()
    }
    if any(skipped.values()):
        log(skipped_markdown(skipped).rstrip())
    images = training_images(plan, skipped)
    if run_dir is not None:
        images = run_image_lists(run_dir, images, skipped, log)
    for t in plan.trials:
        check_batch_size(t.train, t.dataset, len(images[t.dataset]), t.key, f" left after leaving out {len(skipped[t.dataset])}")

    def trainable_for(lists: dict[str, tuple[str, str]]):
        """The trainable, with the image caches its ``input: gpu`` trials share (one object per
        cache in Ray's object store; ``orchestrator.shared_caches``), built on every start of the
        sweep, ``--resume`` included."""
        caches = put_image_caches(plan, lists, log) if res.shared_image_cache else {}
        return tune.with_resources(tune.with_parameters(run_trial, image_caches=caches), {"cpu": res.cpu, "gpu": res.gpu})

    # Tune writes through the storage's pyarrow filesystem (a URI keeps its options, e.g. an S3 endpoint)
    filesystem = plan.storage.fs if plan.storage.is_uri else None

    def new_tuner(specs: list[dict[str, Any]], name: str, storage: Location, trainable):
        keys = {spec["key"] for spec in specs}  # the console's table shows this experiment's trials
        return tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(specs)},
            # reuse_actors: a trial process (torch, lightly, mlflow imported) takes the sweep's next trial
            tune_config=tune.TuneConfig(
                trial_name_creator=lambda t: t.config["trial"]["key"], trial_dirname_creator=lambda t: t.trial_id, reuse_actors=True
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage.path if filesystem else str(storage),
                storage_filesystem=filesystem,
                failure_config=tune.FailureConfig(max_failures=res.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                callbacks=[TrialTable.of(dataclasses.replace(plan, trials=tuple(t for t in plan.trials if t.key in keys)))],
                verbose=tune_verbosity(),
            ),
        )

    tuners = []
    if run_dir is not None:
        state = read_state(run_dir)
        if resumed.changed:  # accepted by --allow-changes: the run takes them on
            text = Path(sweep_file).read_bytes()
            added = accept_changes(run_dir, state, resumed, text)
            log_files(uri, state["parent_run_id"], {COPY: text})
            if added:
                log(f"adding {len(resumed.added)} trial(s) to run {run_dir.name} as {run_dir / added}: {', '.join(resumed.added)}")
        if state.get("finished"):
            log(f"sweep run {run_dir.name} already finished; nothing to resume")
        else:
            log(f"resuming {run_dir}")
            lists = write_image_lists(run_dir, images)  # the run's lists, and new datasets' ones
            trainable = trainable_for(lists)
            tuners.append(tune.Tuner.restore(run_dir.path, trainable=trainable, resume_unfinished=True, resume_errored=True, storage_filesystem=filesystem))
            by_key = {t.key: t for t in plan.trials}
            for addition in state.get("additions", []):
                folder = run_dir / addition["name"]
                if tune.Tuner.can_restore(folder.path, storage_filesystem=filesystem):
                    tuners.append(tune.Tuner.restore(folder.path, trainable=trainable, resume_unfinished=True, resume_errored=True, storage_filesystem=filesystem))
                else:  # added, but stopped before Tune saved the experiment
                    parent, exp = state["parent_run_id"], state["experiment_id"]
                    trials = [by_key[key] for key in addition["trials"]]
                    specs = [_trial_spec(plan, t, uri, child_run(uri, exp, parent, t.key, t.params()), lists) for t in trials]
                    tuners.append(new_tuner(specs, addition["name"], run_dir, trainable))
    else:
        run_dir = new_run_dir(plan.storage, sweep.name)
        tags = {"git_commit": _git_commit(), "sweep_file": str(sweep_file), SKIPPED: "; ".join(skipped_examples(skipped))[:5000] or "none"}
        total_skipped = sum(len(bad) for bad in skipped.values())
        purity_rows = view_pair_purity(first, job_stores, images, log)
        parent = start_sweep(uri, experiment_id, run_dir.name, tags, {SKIPPED: total_skipped, **purity.metrics(purity_rows)})
        if purity_rows:
            (run_dir / purity.FILE).write_bytes(purity.to_json(purity_rows))
            log_files(uri, parent, {purity.FILE: purity.to_json(purity_rows)})
        log_previews(first, job_stores, images, run_dir, uri, parent, log)
        lists = write_image_lists(run_dir, images)
        specs = [_trial_spec(plan, t, uri, child_run(uri, experiment_id, parent, t.key, t.params()), lists) for t in first.trials]
        state = {"sweep": sweep.name, "experiment_id": experiment_id, "tracking_uri": uri, "parent_run_id": parent}
        state["trials"] = trial_identities(plan)  # what --resume --allow-changes compares with
        write_state(run_dir, state)
        text = Path(sweep_file).read_bytes()
        (run_dir / COPY).write_bytes(text)
        log_files(uri, parent, {COPY: text})
        trainable = trainable_for(lists)
        tuners.append(new_tuner(specs, run_dir.name, plan.storage, trainable))
    use_run_folder(run_dir)

    def later_round(number: int, trials: list) -> Any:
        """Round ``number``'s Tuner: its region stores from the last checkpoints of the trials they
        name (``orchestrator.rounds``), their view-pair purity and previews, then its trials as the
        Tune experiment ``round-N`` (restored if it exists); None while a source trial has not finished."""
        by_key = {t.key: t for t in plan.trials}
        exp, parent = state["experiment_id"], state["parent_run_id"]
        checkpoints, waiting = rounds.source_checkpoints(
            trials, checkpointed_histories(run_dir), lambda key: child_run(uri, exp, parent, key, by_key[key].params())
        )
        if waiting:
            log(f"round {number} waits: its regions come from trial(s) {', '.join(waiting)}, not finished; --resume runs it after them")
            return None
        jobs = {}
        for job in plan.mask_jobs:
            if job.after in checkpoints and any(t.store == job.store for t in trials):
                bound = jobs[str(job.store)] = rounds.bind(job, checkpoints[job.after], plan.datasets, plan.regions_dir)
                job_stores[str(bound.store)] = compute_store(bound, plan.datasets[job.dataset], res.mask_actors, res.mask_gpu, res.mask_batch_size, log=log)
        trials = [dataclasses.replace(t, store=jobs[str(t.store)].store) for t in trials]
        this = dataclasses.replace(plan, trials=tuple(trials), mask_jobs=tuple(jobs.values()))
        measured = purity.read(run_dir)
        if not {t.key for t in trials} <= set(purity.by_trial(measured)):  # not measured by an earlier start
            rows = view_pair_purity(this, job_stores, images, log)
            if rows:
                data = purity.to_json([*measured, *rows])
                (run_dir / purity.FILE).write_bytes(data)
                log_files(uri, parent, {purity.FILE: data})
                log_metrics(uri, parent, purity.metrics(rows))
            log_previews(this, job_stores, images, run_dir, uri, parent, log)
        folder = run_dir / rounds.experiment_name(number)
        if tune.Tuner.can_restore(folder.path, storage_filesystem=filesystem):
            return tune.Tuner.restore(folder.path, trainable=trainable, resume_unfinished=True, resume_errored=True, storage_filesystem=filesystem)
        specs = []
        for t in trials:
            run_id = child_run(uri, exp, parent, t.key, t.params())
            set_tag(uri, run_id, rounds.TAG, t.after)
            specs.append(_trial_spec(plan, t, uri, run_id, lists))
        log(f"round {number}: {len(trials)} trial(s) on regions from the checkpoints of {', '.join(checkpoints)}")
        return new_tuner(specs, rounds.experiment_name(number), run_dir, trainable)

    failed = 0
    if not state.get("finished"):
        errors = 0
        stopped = False
        for tuner in tuners:  # the run's own trials, then those added to it
            errors, stopped = _fit(tuner, errors, log)
            if stopped:
                break  # Ctrl+C: the experiments after this one wait for --resume too
        for number, trials in enumerate(later_rounds, start=2):
            tuner = None if stopped else later_round(number, trials)
            if tuner is None:
                break
            errors, stopped = _fit(tuner, errors, log)
        # counted from the checkpoints, not Tune's statuses: after Ctrl+C Tune calls a trial it stopped
        # mid-way TERMINATED (its saved state says RUNNING, so --resume runs it again)
        ended = sum(reached_the_end(h) for h in checkpointed_histories(run_dir).values())
        failed = max(errors, len(plan.trials) - ended)
        if failed > errors:
            log(f"sweep stopped with {len(plan.trials) - ended} trial(s) not finished; continue with --resume")
    return _finish(plan, run_dir, state, failed, skipped, log)


def _fit(tuner, errors: int, log) -> tuple[int, bool]:
    """Run one Tune experiment; the errors so far plus its own, and whether it stopped early."""
    results = tuner.fit()
    for error in results.errors:
        log(f"trial failed: {str(error).splitlines()[-1] if str(error) else type(error).__name__}")
    return errors + len(results.errors), _stopped_early(results)


def _stopped_early(results) -> bool:
    """Whether a Tune experiment returned with a trial neither failed nor at its last epoch (Ctrl+C;
    a trial that never started has no config in its result)."""
    for r in results:
        epochs = ((r.config or {}).get("trial") or {}).get("train", {}).get("epochs")
        if r.error is None and (epochs is None or (r.metrics or {}).get("epoch", 0) < epochs):
            return True
    return False


def _finish(plan: Plan, run_dir: Location, state: dict[str, Any], failed: int, skipped: Skipped, log) -> int:
    """Log what MLflow missed from the checkpoints, close the runs, write the summary and the
    report. The sweep's state is saved first: if MLflow is unreachable now, ``--resume`` does this
    part again."""
    from orchestrator.report import write_report
    from orchestrator.trial_histories import checkpointed_histories, reached_the_end

    state["finished"] = failed == 0
    write_state(run_dir, state)
    uri, parent = state["tracking_uri"], state["parent_run_id"]
    try:
        histories = checkpointed_histories(run_dir)
        for run in child_runs(uri, state["experiment_id"], parent):
            history = histories.get(run.info.run_id)
            close_trial_run(uri, run, history["history"] if history else [], "FINISHED" if reached_the_end(history) else "FAILED")
        rows = summary_rows(uri, state["experiment_id"], parent)
        log_files(uri, parent, write_summary(rows, run_dir, skipped))
        finish_run(uri, parent, "FINISHED" if failed == 0 else "FAILED")
    except TrackingError as err:
        state = "is unreachable" if err.unreachable else "answered with an error"
        raise TrackingError(
            f"MLflow tracking at {uri} {state} at the end of the sweep: the trials are over and every "
            f"epoch they trained is kept in their checkpoints under {run_dir}; run the sweep again with --resume "
            f"once MLflow accepts them, to log them ({err})",
            err.unreachable,
        ) from None
    try:  # read back from MLflow, so it can be made again at any time: a failure here loses nothing
        report = write_report(uri, state["experiment_id"], parent, run_dir, plan.sweep.name)[0]
    except Exception as err:  # noqa: BLE001
        report = None
        log(f"report failed ({type(err).__name__}: {err}); rerun: python -m orchestrator.report SWEEP.yaml --run-dir {run_dir}")
    log("\n" + markdown(rows) + ("\n" + skipped_markdown(skipped) if any(skipped.values()) else ""))
    log(f"summary: {run_dir / 'summary.md'} and summary.csv (also artifacts of MLflow run {parent})")
    if report is not None:
        log(f"report: {report} with results.csv and knn_curves.png (artifacts under report/)")
    if uri.startswith("sqlite:"):
        log(f"MLflow UI: mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000")
        log(f"then open {runs_page('http://127.0.0.1:5000', state['experiment_id'])}")
    else:
        log(f"MLflow: {runs_page(uri, state['experiment_id'])}")
    return failed


EXAMPLES = """\
examples:
  python -m orchestrator.sweep experiments/demo.yaml             the demo: 3 trials, ~4 min on 2 CPU cores
  python -m orchestrator.sweep experiments/table2.yaml --dry-run the trials and region jobs it would run, and any missing data
  python -m orchestrator.sweep experiments/table2.yaml --smoke   the same sweep on tiny synthetic data, 1 epoch
  python -m orchestrator.sweep experiments/table2.yaml --resume  continue its newest run after a crash or Ctrl+C
  python -m orchestrator.sweep experiments/table2.yaml --address HEAD:6379   on a Ray cluster (tracking.uri needed)
  python -m orchestrator.sweep experiments/demo.yaml -v          Ray's, Ray Data's and Tune's own output on the console too

The console shows one line per stage, a table of the trials (the axes that vary, epoch, latest KNN)
and the results; Ray's, Ray Data's and Tune's output goes to sweep.log in the run folder
(<storage>/<sweep>-<time>/). Results: summary.md and report/ there, and the MLflow UI (the link at the end).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.sweep", epilog=EXAMPLES,
        description="Run a sweep from one YAML file: region stores (Ray Data), the grid of trials (Ray Tune), MLflow runs, a report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep", help="sweep YAML file, e.g. experiments/demo.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the planned trials and region jobs, then exit")
    parser.add_argument("--resume", action="store_true", help="continue the newest run of this sweep")
    parser.add_argument(
        "--allow-changes", action="store_true", help="with --resume: accept sweep-file edits that keep every old trial as it was, and run the trials they add"
    )
    parser.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    parser.add_argument("--smoke", action="store_true", help="the same sweep shrunk to tiny synthetic data and 1 epoch")
    parser.add_argument("-v", "--verbose", action="store_true", help="print Ray's, Ray Data's and Tune's output too (default: to sweep.log in the run folder)")
    args = parser.parse_args(argv)
    if args.allow_changes and not args.resume:
        parser.error("--allow-changes goes with --resume")
    console = Console(verbose=args.verbose)
    ray_was_up = ray_is_up()
    try:
        with console.captured():
            try:
                failed = run_sweep(
                    args.sweep, resume=args.resume, address=args.address, dry_run=args.dry_run, smoke=args.smoke, allow_changes=args.allow_changes,
                    log=console,
                )
            finally:
                if not ray_was_up and ray_is_up():
                    shutdown_ray()  # inside the capture, not at exit: Ray's last relayed lines land in the log file
    except (SweepError, TrackingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
