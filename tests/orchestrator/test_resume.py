"""--resume continues the run as planned: an edited sweep file is one line naming the changed keys,
before MLflow or Ray start; --allow-changes takes edits that keep every old trial as it was, and
runs the trials they add (a real sweep: ``test_allow_changes_runs_an_appended_seed_*``)."""

import os
import signal
import subprocess

import pytest

from orchestrator.config import SweepError, load_sweep
from orchestrator.plan import make_plan
from orchestrator.resume import changed_keys, check_resume, trial_identities
from orchestrator.rundirs import new_run_dir, storage_location, write_state
from orchestrator.sweep import main
from tests.orchestrator.test_config import GOOD
from tests.orchestrator.test_sweep import runs_of, start_sweep_and_wait_for_a_checkpoint

SWEEP = GOOD + """\
storage: {root}/runs
tracking: {{uri: "http://127.0.0.1:9"}}
resources: {{max_failures: 2}}
"""


@pytest.fixture
def resumable(tmp_path):
    """A sweep file and a run of it (state file with the trials' identities, and its copy of the sweep file)."""
    sweep = tmp_path / "t.yaml"
    sweep.write_text(SWEEP.format(root=tmp_path))
    run_dir = new_run_dir(storage_location("storage", str(tmp_path / "runs")), "t")
    write_state(run_dir, {"sweep": "t", "trials": trial_identities(make_plan(load_sweep(sweep)))})
    (run_dir / "sweep.yaml").write_bytes(sweep.read_bytes())
    return sweep, run_dir


def _check(sweep, run_dir, allow_changes=False):
    config = load_sweep(sweep)
    return check_resume(run_dir, config, make_plan(config), str(sweep), allow_changes)


def test_an_edited_sweep_file_stops_resume_in_one_line_naming_the_changed_keys(resumable, capsys):
    sweep, run_dir = resumable
    _check(sweep, run_dir)  # identical: resume
    sweep.write_text(sweep.read_text().replace("c: [1.0, 1.3]", "c: [1.0, 1.5]").replace("epochs: 1}", "epochs: 2}"))
    assert changed_keys(load_sweep(str(run_dir / "sweep.yaml")), load_sweep(sweep)) == ["grid.c", "train.epochs"]
    assert main([str(sweep), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --resume: {sweep} differs from the run's copy {run_dir / 'sweep.yaml'} in grid.c, train.epochs; ")
    assert err.count("\n") == 1  # one line, and MLflow (unreachable here) was never asked
    with pytest.raises(SweepError, match=r"--allow-changes: the changes to grid\.c, train\.epochs alter or remove trial\(s\) simclr, samclr,c=1\.0, samclr,c=1\.3;"):
        _check(sweep, run_dir, allow_changes=True)


@pytest.mark.parametrize("legacy", [False, True], ids=["state-with-identities", "run-from-before-identities"])
def test_allow_changes_takes_edits_that_keep_every_trial_and_adds_new_ones(resumable, legacy):
    sweep, run_dir = resumable
    if legacy:  # a run whose state file has no trial identities: compared with its copy's plan
        write_state(run_dir, {"sweep": "t"})
    sweep.write_text(sweep.read_text().replace("max_failures: 2", "max_failures: 5"))
    with pytest.raises(SweepError, match=r"differs from the run's copy .* in resources\.max_failures"):
        _check(sweep, run_dir)
    kept = _check(sweep, run_dir, allow_changes=True)  # every trial as it was, none added
    assert kept.added == () and kept.changed == ("resources.max_failures",)
    assert [t.key for t in kept.plan.trials] == ["simclr", "samclr,c=1.0", "samclr,c=1.3"]
    sweep.write_text(sweep.read_text().replace("method: [simclr, samclr]", "method: [simclr, samclr, moco]").replace("c: [1.0, 1.3]", "c: [1.0, 1.3, 1.6]"))
    more = _check(sweep, run_dir, allow_changes=True)
    assert more.added == ("samclr,c=1.6", "moco")
    assert [t.key for t in more.plan.trials] == ["simclr", "samclr,c=1.0", "samclr,c=1.3", "samclr,c=1.6", "moco"]


def test_an_appended_seed_keeps_the_old_trials_under_their_names(resumable):
    """seeds [0] -> [0, 1] makes seed a varying axis: planned afresh, the old trials would be named
    simclr,seed=0 ...; the run keeps its names (its MLflow runs and Tune trials carry them)."""
    sweep, run_dir = resumable
    sweep.write_text(sweep.read_text() + "seeds: [0, 1]\n")
    resumed = _check(sweep, run_dir, allow_changes=True)
    assert resumed.changed == ("seeds",)
    assert resumed.added == ("simclr,seed=1", "samclr,c=1.0,seed=1", "samclr,c=1.3,seed=1")
    keys = {t.key: t.train.seed for t in resumed.plan.trials}
    assert keys == {"simclr": 0, "samclr,c=1.0": 0, "samclr,c=1.3": 0, "simclr,seed=1": 1, "samclr,c=1.0,seed=1": 1, "samclr,c=1.3,seed=1": 1}


@pytest.mark.parametrize(
    "old,new,changed",
    [
        ("seeds: [0, 1]", "seeds: [1, 2]", "seeds"),  # seed 0 is gone
        ("epochs: 1}", "epochs: 2}", "train.epochs"),
        ("  sets:", "  knn_k: 5\n  sets:", "eval.settings.knn_k"),  # the old trials' evaluation would differ from the new ones'
    ],
)
def test_an_addition_that_alters_an_old_trial_is_one_line_naming_the_changed_keys(resumable, old, new, changed):
    sweep, run_dir = resumable
    sweep.write_text(sweep.read_text() + "seeds: [0, 1]\n")
    _check(sweep, run_dir, allow_changes=True)
    sweep.write_text(sweep.read_text().replace(old, new))
    with pytest.raises(SweepError, match=rf"^--resume --allow-changes: the changes to [^;]*{changed}[^;]* alter or remove trial\(s\) simclr, ") as err:
        _check(sweep, run_dir, allow_changes=True)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_allow_changes_runs_an_appended_seed_and_resumes_the_old_trials(tmp_path):
    """A real sweep (2 trials, 3 epochs) whose driver is SIGKILLed after a checkpoint; seed 1 is then
    appended to its sweep file. --resume alone refuses it in one line naming ``seeds``;
    --resume --allow-changes finishes the 2 old trials from their checkpoints under their old names
    and runs the 2 new ones (in ``added-1/``): one FINISHED child run per trial, every epoch once."""
    proc, cmd, env = start_sweep_and_wait_for_a_checkpoint(tmp_path, 3, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    proc.wait()
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(sweep.read_text() + "seeds: [0, 1]\n")
    refused = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and " in seeds; " in refused.stderr, refused.stderr
    done = subprocess.run(cmd + ["--resume", "--allow-changes"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "adding 2 trial(s) to run tiny-" in done.stdout and "simclr,seed=1, samclr,seed=1" in done.stdout

    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    seeds = {r.data.tags["trial_id"]: r.data.params["seed"] for r in children}
    assert seeds == {"simclr": "0", "samclr": "0", "simclr,seed=1": "1", "samclr,seed=1": "1"}  # one run each, old names kept
    for run in children:
        assert run.info.status == "FINISHED"
        for key in ("epoch", "knn_top1/shapes"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], (run.data.tags["trial_id"], key)
    run_dir = next((tmp_path / "runs").glob("tiny-*"))
    added = [p for p in (run_dir / "added-1").iterdir() if p.is_dir()]
    assert len(added) == 2 and all((p / "checkpoint_000002").is_dir() for p in added)  # the new trials' own experiment
    assert (run_dir / "sweep.yaml").read_text() == sweep.read_text()  # the run's copy is the accepted file
    assert "seeds" not in (run_dir / "sweep.before-added-1.yaml").read_text()
    again = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already finished" in again.stdout, again.stderr[-3000:]
    assert len(runs_of(tmp_path)[2]) == 4
