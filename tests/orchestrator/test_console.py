"""The sweep's console: what a person sees, what goes to the log file, and what MLflow holds for them."""

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
from PIL import Image

from samdata.storage import location
from orchestrator.console import LOG_FILE, Console, StoreProgress
from orchestrator.plan import make_plan
from orchestrator.config import load_sweep
from orchestrator.trial_table import TrialTable, varying_axes
from tests.orchestrator.test_sweep import SWEEP

REPO = Path(__file__).resolve().parents[2]


def write_sweep(root: Path, epochs: int = 2) -> Path:
    """The tests' tiny sweep with a second value of c: trials simclr, samclr c=1.3, samclr c=2.0."""
    path = root / "tiny.yaml"
    path.write_text(SWEEP.format(root=root, epochs=epochs).replace("  masker: [gt]\n", "  masker: [gt]\n  c: [1.3, 2.0]\n"))
    return path


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_store_progress_draws_a_bar_with_an_eta_from_the_rate_since_the_first_batch():
    clock = Clock()
    progress = StoreProgress("scenes/gt", 0, 400, print, clock=clock)
    clock.now = 60.0  # the actors took a minute to start: not counted in the rate
    assert progress.line(40) == "regions scenes/gt [##..................] 40/400 images"
    progress.update(40)
    clock.now = 70.0
    assert progress.line(100) == "regions scenes/gt [#####...............] 100/400 images, 50 s left"
    clock.now = 150.0
    assert progress.line(220) == "regions scenes/gt [###########.........] 220/400 images, 1 min 30 s left"
    assert progress.line(400) == "regions scenes/gt [####################] 400/400 images"


def test_store_progress_without_a_console_logs_every_tenth():
    lines = []
    progress = StoreProgress("scenes/gt", 0, 100, lines.append)
    for done in (5, 10, 15, 30, 100):
        progress.update(done)
    assert lines == ["regions scenes/gt: 10/100 images", "regions scenes/gt: 30/100 images", "regions scenes/gt: 100/100 images"]


def test_trial_table_shows_the_axes_that_vary_the_epoch_and_the_latest_knn(tmp_path):
    plan = make_plan(load_sweep(str(write_sweep(tmp_path))), base=tmp_path)
    axes, values = varying_axes(plan)
    assert axes == ["method", "c"]  # masker, epochs, dataset and seed are the same in every trial
    assert values == {"simclr": {"method": "simclr", "c": "-"}, "samclr,c=1.3": {"method": "samclr", "c": "1.3"},
                      "samclr,c=2.0": {"method": "samclr", "c": "2.0"}}
    shown = []
    table = TrialTable.of(plan)
    table.every_s = 3600.0
    trial = {key: SimpleNamespace(config={"trial": {"key": key}}) for key in values}
    console = Console(stream=io.StringIO())
    with console.captured():
        for t in trial.values():
            table.on_trial_start(0, [], t)
        table.on_trial_result(0, [], trial["samclr,c=2.0"], {"epoch": 1, "train/loss": 4.0, "knn_top1/shapes": 0.25})
        table.on_trial_result(0, [], trial["samclr,c=2.0"], {"epoch": 2, "train/loss": 3.0, "knn_top1/shapes": 0.5})
        table.on_trial_complete(0, [], trial["samclr,c=2.0"])
    shown = console.stream.getvalue().splitlines()
    first, last = shown[:4], shown[4:]
    assert first[0].split() == ["method", "c", "status", "epoch"] and len(first) == 4  # once all trials started
    assert last[0].split() == ["method", "c", "status", "epoch", "knn", "shapes"]
    assert last[3].split() == ["samclr", "2.0", "done", "2/2", "0.500"]
    assert last[1].split() == ["simclr", "-", "running", "0/2", "-"]
    assert not any("train/loss" in line for line in shown)
    # a resumed run: Tune restores a trial finished before as TERMINATED and never starts it again
    resumed = TrialTable.of(plan)
    finished = SimpleNamespace(config={"trial": {"key": "simclr"}}, status="TERMINATED", last_result={"epoch": 2, "knn_top1/shapes": 0.75})
    resumed.on_trial_start(0, [finished, trial["samclr,c=1.3"]], trial["samclr,c=1.3"])
    assert resumed.render().splitlines()[1].split() == ["simclr", "-", "done", "2/2", "0.750"]


def test_quiet_console_sends_every_output_to_the_log_file_and_moves_it_to_the_run_folder(tmp_path):
    """Python prints, raw writes to file descriptors 1 and 2 and child processes' output go to the
    log file; the console's own lines go to the person (and the file); the file moves into the
    run folder when the sweep names it, and the descriptors are restored afterwards."""
    stream = io.StringIO()
    console = Console(stream=stream)
    run_dir = location(str(tmp_path / "run"))
    with console.captured():
        print("a python print")
        os.write(1, b"raw fd 1\n")
        os.write(2, b"raw fd 2\n")
        subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"], check=True)
        console("for the person")
        console.detail("for the file")
        first = console.log_path
        console.use_run_folder(run_dir)
        print("after the move")
    log = (tmp_path / "run" / LOG_FILE).read_text()
    for text in ("a python print", "raw fd 1", "raw fd 2", "child out", "child err", "for the person", "for the file", "after the move"):
        assert text in log, text
    assert not first.exists()
    assert stream.getvalue().splitlines() == [
        "for the person",
        f"run folder: {tmp_path / 'run'} (Ray's, Ray Data's and Tune's output: {LOG_FILE} there)",
        f"Ray, Ray Data and Tune logs: {tmp_path / 'run' / LOG_FILE}",
    ]
    print("back on stdout")  # pytest's capture again, not the log file
    assert "back on stdout" not in (tmp_path / "run" / LOG_FILE).read_text()


def test_a_bad_sweep_file_or_a_dry_run_leaves_no_log_file(tmp_path, capfd, monkeypatch):
    """Quiet mode does not swallow errors: the one-line error reaches the terminal's stderr, and a
    log file holding nothing but the console's own lines is not left behind."""
    import tempfile

    from orchestrator.sweep import main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    bad = tmp_path / "bad.yaml"
    bad.write_text(write_sweep(tmp_path).read_text().replace("epochs: [2]", "epochs: [0]"))
    assert main([str(bad)]) == 2
    out, err = capfd.readouterr()
    assert out == "" and err.startswith(f"error: {bad}:") and err.count("\n") == 1
    assert list((tmp_path / "tmp").iterdir()) == []
    assert main([str(write_sweep(tmp_path)), "--dry-run"]) == 0  # nor does a dry run
    out, err = capfd.readouterr()
    assert out.startswith("sweep tiny: 3 trials") and "logs:" not in out and err == ""
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The CLI, as a person runs it, on a real tiny sweep of 3 trials (2 epochs): (folder, result)."""
    root = tmp_path_factory.mktemp("swept")
    sweep = write_sweep(root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "orchestrator.sweep", str(sweep)], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root, done


@pytest.mark.slow
def test_sweep_console_is_short_and_mlflow_holds_previews_and_loadable_backbones(swept):
    """The CLI on a real tiny sweep (3 trials): Ray's and Tune's output only in sweep.log; the
    console has the trial table of the varying axes and the results; the experiment opens as model
    training; child runs are named by their axes and carry them as params; the parent run holds a
    preview per masker; each child run holds its final backbone, which torchvision's ResNet loads
    with the weights of the trial's last checkpoint."""
    import mlflow
    from mlflow import MlflowClient

    from selfsup.backbone import load_backbone

    tmp_path, done = swept
    out = done.stdout.splitlines()
    run_dir = next((tmp_path / "runs").glob("tiny-*"))
    log = (run_dir / LOG_FILE).read_text()
    assert "Started a local Ray instance" in log and "pid=" in log  # Ray's start and the trials' relayed output
    for noise in ("pid=", "Started a local Ray instance", "Configuration for experiment", "trial/train"):
        assert noise not in done.stdout and noise not in done.stderr, noise
    assert out[0] == "sweep tiny: 3 trials, 1 region jobs"
    tables = [i for i, line in enumerate(out) if line.split()[:4] == ["method", "c", "status", "epoch"]]
    assert tables, done.stdout
    final = out[tables[-1] + 1 : tables[-1] + 4]
    assert sorted(line.split()[:4] for line in final) == [["samclr", "1.3", "done", "2/2"], ["samclr", "2.0", "done", "2/2"], ["simclr", "-", "done", "2/2"]]
    assert any(line.startswith("| samclr,c=2.0 |") for line in out) and out[-1] == f"Ray, Ray Data and Tune logs: {run_dir / LOG_FILE}"
    assert len(out) < len(log.splitlines())

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == ["samclr c=1.3", "samclr c=2.0", "simclr"]
    assert {(r.data.params["method"], r.data.params["c"]) for r in children.values()} == {("simclr", "-"), ("samclr", "1.3"), ("samclr", "2.0")}

    previews = {a.path for a in client.list_artifacts(parent.info.run_id, "previews")}
    assert previews == {"previews/scenes--gt.png"}
    with Image.open(client.download_artifacts(parent.info.run_id, "previews/scenes--gt.png", str(tmp_path))) as png:
        assert png.format == "PNG" and png.width > png.height  # 4 images, each with 3 view pairs beside it

    histories = {}
    for trial_dir in run_dir.iterdir():
        checkpoints = sorted(trial_dir.glob("checkpoint_*"))
        if checkpoints:
            history = json.loads((checkpoints[-1] / "history.json").read_text())
            histories[history["run_id"]] = checkpoints[-1] / "state.pt"
    for name, run in children.items():
        # the README's lines
        folder = Path(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="backbone", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", dst_path=str(tmp_path / name)
        ))
        assert json.loads((folder / "backbone.json").read_text()) == {"architecture": "resnet18", "width": 8, "stem": "cifar", "feature_dim": 64}
        model = load_backbone(folder)
        assert isinstance(model, torchvision.models.ResNet)
        trained = torch.load(histories[run.info.run_id], map_location="cpu", weights_only=True)["model"]
        weights = {k.removeprefix("backbone."): v for k, v in trained.items() if k.startswith("backbone.")}
        assert weights.keys() == model.state_dict().keys()
        assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items()), name


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendered(url: str, budget_ms: int = 30000, screenshot: Path | None = None) -> str:
    """The page's DOM after headless Chromium ran its scripts for ``budget_ms`` of virtual time; with
    ``screenshot``, the same page load also writes a PNG of the window there (one load, not two)."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1600,1000", f"--virtual-time-budget={budget_ms}"]
    if screenshot is not None:
        flags.append(f"--screenshot={screenshot}")
    return subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=300, check=True).stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_mlflow_ui_link_shows_the_parent_its_trials_and_their_knn_chart(swept):
    """``mlflow ui`` on the sweep's database, the link the sweep printed, in headless Chromium: the
    model-training view, a runs list with the parent run and every trial, and a KNN chart with a
    drawn curve per trial. The screenshot is kept beside the test's files (docs/mlflow_ui.png is one)."""
    tmp_path, done = swept
    link = next(line for line in done.stdout.splitlines() if line.startswith("then open ")).removeprefix("then open ")
    port = free_port()
    url = link.replace("http://127.0.0.1:5000/", f"http://127.0.0.1:{port}/")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        for _ in range(600):  # the server's start (seconds to a minute on a busy machine)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        trials = ["samclr c=1.3", "samclr c=2.0", "simclr"]
        for attempt in range(4):  # a page still loading its runs or chart when the budget ran out is loaded again
            dom = rendered(url, budget_ms=30000 * (attempt + 1), screenshot=tmp_path / "mlflow_ui.png")
            if all(f"{t} (knn_top1/shapes)" in dom for t in trials) and 'title="knn_top1/shapes"' in dom:
                break
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    parent = next((tmp_path / "runs").glob("tiny-*")).name
    assert ">Runs<" in dom and "Training runs" not in dom  # the model-training view, not the GenAI one
    for name in [parent, *trials]:
        assert f">{name}<" in dom, name  # a row of the runs list
    chart = dom[dom.index('title="knn_top1/shapes"'):]
    chart = chart[: chart.index("<h4 ")] if "<h4 " in chart else chart
    for name in trials:
        assert f"{name} (knn_top1/shapes)" in chart, name  # the chart's legend
    assert re.search(r'class="js-line" d="M[\d.]+,[\d.]+L', chart), "no curve drawn"
    with Image.open(tmp_path / "mlflow_ui.png") as shot:
        assert shot.size == (1600, 1000) and len(set(shot.convert("L").getdata())) > 16  # not a blank page
