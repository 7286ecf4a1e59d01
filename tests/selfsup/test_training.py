import math
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup.config import EvalConfig, TrainConfig
from selfsup.data.evalsets import build_eval_set
from selfsup.training import NonFiniteLossError, Pretraining, lr_schedule
from tests.selfsup.exact_resume import assert_resumes_exactly

TRAIN = dict(epochs=3, batch_size=16, image_size=32, backbone_width=8, stem="cifar", workers=0)
EVAL = EvalConfig(every=2, knn_k=20, linear_epochs=3, batch_size=64, linear_batch_size=32)


def run(synthetic, boxes, **overrides):
    train = TrainConfig(**{**TRAIN, **overrides})
    evalset = build_eval_set("folder", synthetic.eval, name="shapes")
    return Pretraining(train, EVAL, synthetic.images, [evalset], boxes_of=boxes.__getitem__)


@pytest.mark.parametrize("method", ["simclr", "samclr"])
def test_short_run_gives_finite_losses_knn_curve_and_linear_probe(synthetic, boxes, method):
    seen = []
    history = run(synthetic, boxes, method=method).fit(lambda metrics, _: seen.append(metrics))
    assert seen == history and [m["epoch"] for m in history] == [1, 2, 3]
    assert all(math.isfinite(m["train/loss"]) and m["images_per_s"] > 0 for m in history)
    knn_epochs = [m["epoch"] for m in history if "knn_top1/shapes" in m]
    assert knn_epochs == [2, 3]  # every 2 epochs and after the last one
    assert "linear_top1/shapes" in history[-1] and all("linear_top1/shapes" not in m for m in history[:-1])
    for m in history:
        for key in ("knn_top1/shapes", "linear_top1/shapes"):
            if key in m:
                assert 0.0 <= m[key] <= 1.0


def test_samclr_defaults_follow_the_paper(synthetic, boxes):
    cfg = run(synthetic, boxes, method="samclr").cfg
    assert (cfg.sampling, cfg.method_params["temperature"]) == ("regions", 0.07)
    cfg = run(synthetic, boxes, method="simclr").cfg
    assert (cfg.sampling, cfg.method_params["temperature"], cfg.lr) == ("random", 0.5, pytest.approx(0.06 * 16 / 256))


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])  # 2: worker processes start each run
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(synthetic, boxes, tmp_path, workers):
    """Killed after epoch 2 of 3 (an evaluation epoch), with and without data-loading workers."""
    assert_resumes_exactly(lambda: run(synthetic, boxes, method="samclr", workers=workers), 2, tmp_path / "ckpt.pt")


def test_resume_refuses_a_checkpoint_of_other_settings(synthetic, boxes, tmp_path):
    trainer = run(synthetic, boxes, epochs=1)
    trainer.save(tmp_path / "ckpt.pt")
    other = run(synthetic, boxes, epochs=1, method_params={"temperature": 0.2})
    with pytest.raises(ValueError, match="other settings \\(temperature\\)"):
        other.restore(tmp_path / "ckpt.pt")


def test_nan_guard_stops_the_run(synthetic, boxes):
    with pytest.raises(NonFiniteLossError, match="lower the learning rate"):
        run(synthetic, boxes, method_params={"base_lr": 1e12}, epochs=2).fit()


def test_batch_larger_than_dataset_and_missing_store_are_clear_errors(synthetic, boxes):
    with pytest.raises(ValueError, match="larger than the pretraining set"):
        run(synthetic, boxes, batch_size=1000)
    evalset = build_eval_set("folder", synthetic.eval)
    with pytest.raises(ValueError, match="give boxes_of"):
        Pretraining(TrainConfig(method="samclr", **TRAIN), EVAL, synthetic.images, [evalset])


def test_lr_schedule_warms_up_then_decays_to_zero():
    lr = lr_schedule(1.0, epochs=10, steps_per_epoch=4, warmup_epochs=2)
    assert len(lr) == 40
    assert lr[0] == pytest.approx(1 / 8) and lr[7] == pytest.approx(1.0)
    assert np.all(np.diff(lr[8:]) <= 0) and lr[-1] < 0.01


@pytest.mark.slow  # three runs of 2 epochs each per method
@pytest.mark.parametrize("method", ["moco", "byol", "dino", "swav", "sce"])
def test_every_method_resumes_exactly(synthetic, boxes, tmp_path, method):
    """Queue, teacher, centre, prototypes, optimiser and RNG all come back from the checkpoint."""
    assert_resumes_exactly(lambda: run(synthetic, boxes, method=method, epochs=2, sampling="regions"), 1, tmp_path / "ckpt.pt")


@pytest.mark.slow  # a child process that imports torch
def test_failed_checkpoint_write_keeps_the_previous_checkpoint(synthetic, boxes, tmp_path):
    """A real write failure (the OS file-size limit, as a full disk would) in a child process."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import resource, signal, sys, torch
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.selfsup.test_training import TRAIN, EVAL
        from selfsup.config import TrainConfig
        from selfsup.training import CheckpointWriteError, Pretraining
        trainer = Pretraining(TrainConfig(**{{**TRAIN, "epochs": 1}}), EVAL, {str(synthetic.images)!r})
        path = {str(tmp_path / "ckpt.pt")!r}
        trainer.save(path)
        before = open(path, "rb").read()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        trainer.epoch = 1
        try:
            trainer.save(path)
        except CheckpointWriteError as err:
            print("ERROR", err)
        assert open(path, "rb").read() == before
        again = Pretraining(TrainConfig(**{{**TRAIN, "epochs": 1}}), EVAL, {str(synthetic.images)!r})
        again.restore(path)
        print("RESTORED", again.epoch)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERROR could not write checkpoint" in done.stdout and "the previous checkpoint is intact" in done.stdout
    assert "RESTORED 0" in done.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_untrained_network_is_evaluated_as_epoch_zero_once(synthetic, boxes, tmp_path):
    train = TrainConfig(**{**TRAIN, "epochs": 2})
    evalset = build_eval_set("folder", synthetic.eval, name="shapes")
    at_start = EvalConfig(**{**EVAL.__dict__, "at_start": True})
    first = Pretraining(train, at_start, synthetic.images, [evalset])
    seen = []
    first.fit(lambda metrics, run: (seen.append(metrics["epoch"]), run.save(tmp_path / "state.pt")) if metrics["epoch"] == 0 else seen.append(metrics["epoch"]))
    assert seen == [0, 1, 2]
    zero = first.history[0]
    assert set(zero) == {"epoch", "knn_top1/shapes", "linear_top1/shapes", "linear_best_top1/shapes"}
    # the epoch-0 scores are the untrained backbone's: a fresh run with the same seed gives the same
    fresh = Pretraining(train, EvalConfig(**{**EVAL.__dict__, "linear_epochs": EVAL.linear_epochs}), synthetic.images, [evalset])
    assert fresh.evaluate(linear=False)["knn_top1/shapes"] == zero["knn_top1/shapes"]
    # resuming from the epoch-0 checkpoint trains on without evaluating the start again
    resumed = Pretraining(train, at_start, synthetic.images, [evalset])
    resumed.restore(tmp_path / "state.pt")
    assert [m["epoch"] for m in resumed.fit()] == [0, 1, 2]


class _RunsCode:
    """What a malicious checkpoint could carry: unpickling it would create a file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_load_weights_only(synthetic, boxes, tmp_path):
    """restore() uses torch.load(weights_only=True): a checkpoint that would run code is refused."""
    import pickle

    trainer = run(synthetic, boxes, epochs=1)
    state = trainer.state_dict()
    state["history"] = [_RunsCode(str(tmp_path / "pwned"))]
    torch.save(state, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        trainer.restore(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
