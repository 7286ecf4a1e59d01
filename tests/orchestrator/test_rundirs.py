"""Run folders and their state file on local and URI storage; storage errors in one line."""

import pytest

from orchestrator.config import SweepError
from orchestrator.rundirs import latest_run_dir, read_state, storage_location, write_state
from orchestrator.summary import write_summary
from tests.samdata.test_storage import in_memory


@pytest.mark.parametrize("kind", ["local", "file_uri", "in_memory"])
def test_newest_run_is_found_on_any_storage(tmp_path, kind):
    storage = {"local": str(tmp_path / "runs"), "file_uri": f"file://{tmp_path}/runs", "in_memory": in_memory("b/runs")}[kind]
    root = storage_location("storage", storage) if isinstance(storage, str) else storage
    assert latest_run_dir(root, "tiny") is None
    for name in ("tiny-20250101-000000", "tiny-20250102-000000", "other-20250103-000000"):
        write_state(root / name, {"sweep": name.split("-")[0]})
    (root / "tiny-20250104-000000").mkdir()  # a run folder without a state file: not a run (yet)
    newest = latest_run_dir(root, "tiny")
    assert newest.name == "tiny-20250102-000000" and read_state(newest) == {"sweep": "tiny"}
    if kind == "file_uri":
        assert str(newest) == f"file://{tmp_path}/runs/tiny-20250102-000000"
    files = write_summary([{"trial": "simclr", "status": "FINISHED"}], newest)
    assert (newest / "summary.md").read_bytes() == files["summary.md"] and b"| simclr |" in files["summary.md"]


def test_storage_errors_name_the_field_in_one_line():
    with pytest.raises(SweepError) as err:
        storage_location("regions_dir", "foo://bucket/regions")
    assert str(err.value).startswith("regions_dir: bad URI 'foo://bucket/regions'") and "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["local", "in_memory"])
def test_sweeps_of_one_name_started_in_the_same_second_get_their_own_run_folders(tmp_path, kind):
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.rundirs import new_run_dir

    root = storage_location("storage", str(tmp_path / "runs")) if kind == "local" else in_memory("b/runs")
    now = 1767225600.0  # every start in the same second
    with ThreadPoolExecutor(6) as pool:
        dirs = list(pool.map(lambda _: new_run_dir(root, "tiny", now), range(6 if kind == "local" else 1)))
    if kind == "in_memory":
        dirs.append(new_run_dir(root, "tiny", now))
    names = sorted(d.name for d in dirs)
    assert len(set(names)) == len(dirs)
    assert names[0].count("-") == 2 and all(n.startswith(names[0]) for n in names)
    for d in dirs:
        write_state(d, {"name": d.name})
    write_state(root / "tiny-x-20991231-000000", {"name": "another sweep"})  # a sweep named tiny-x is not a run of tiny
    assert latest_run_dir(root, "tiny").name == names[-1]
