"""--resume continues the run as planned: an edited sweep file is one line naming the changed keys,
before MLflow or Ray start; --allow-changes takes edits that keep every old trial as it was."""

import pytest

from orchestrator.config import SweepError, load_sweep
from orchestrator.plan import make_plan
from orchestrator.rundirs import new_run_dir, storage_location, write_state
from orchestrator.sweep import changed_keys, check_resume, main
from tests.orchestrator.test_config import GOOD

SWEEP = GOOD + """\
storage: {root}/runs
tracking: {{uri: "http://127.0.0.1:9"}}
resources: {{max_failures: 2}}
"""


@pytest.fixture
def resumable(tmp_path):
    """A sweep file and a run of it (state file and its copy of the sweep file)."""
    sweep = tmp_path / "t.yaml"
    sweep.write_text(SWEEP.format(root=tmp_path))
    run_dir = new_run_dir(storage_location("storage", str(tmp_path / "runs")), "t")
    write_state(run_dir, {"sweep": "t"})
    (run_dir / "sweep.yaml").write_bytes(sweep.read_bytes())
    return sweep, run_dir


def _check(sweep, run_dir, allow_changes=False):
    config = load_sweep(sweep)
    check_resume(run_dir, config, make_plan(config), str(sweep), allow_changes)


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


def test_allow_changes_takes_edits_that_keep_every_trial_and_refuses_added_trials(resumable):
    sweep, run_dir = resumable
    sweep.write_text(sweep.read_text().replace("max_failures: 2", "max_failures: 5"))
    with pytest.raises(SweepError, match=r"differs from the run's copy .* in resources\.max_failures"):
        _check(sweep, run_dir)
    _check(sweep, run_dir, allow_changes=True)  # every trial as it was
    sweep.write_text(sweep.read_text().replace("method: [simclr, samclr]", "method: [simclr, samclr, moco]"))
    with pytest.raises(SweepError, match=r"add trial\(s\) moco.*run the new one without --resume"):
        _check(sweep, run_dir, allow_changes=True)
