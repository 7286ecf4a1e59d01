"""Frozen encoders in a sweep file: one trial per encoder and seed beside the trained grid, their
weights checked before Ray starts, and bad entries as one line naming the place."""

import pytest

from orchestrator.config import SweepError, parse_sweep
from orchestrator.plan import describe, make_plan
from tests.orchestrator.sweep_files import edit
from tests.orchestrator.test_config import GOOD

SWEEP = edit(
    GOOD,
    ("grid:\n  method: [simclr, samclr]\n", """\
encoders:
  dino: {{model: dinov2_vits14, weights: random, input_size: 28}}
  r18: {{model: resnet18, weights: {weights}}}
grid:
  method: [simclr, samclr, frozen]
  encoder: [dino, r18]
"""),
    ("  c: [1.0, 1.3]\n", "  c: [1.0, 1.3]\n  epochs: [1, 2]\n"),
    (", epochs: 1}}\n", "}}\nseeds: [0, 1]\n"),
)
"""test_config's sweep with two frozen encoders, an epochs axis and two seeds."""

def sweep_text(tmp_path, weights="r18.pth"):
    return SWEEP.format(root=tmp_path / "data", weights=weights)


def test_frozen_trials_ignore_training_axes_and_carry_their_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r18.pth").write_bytes(b"weights")  # the plan checks it is there, loads nothing
    plan = make_plan(parse_sweep(sweep_text(tmp_path)), base=tmp_path)
    frozen = [t for t in plan.trials if t.train.method == "frozen"]
    trained = [t for t in plan.trials if t.train.method != "frozen"]
    assert len(trained) == (2 + 2 * 2) * 2  # simclr x epochs, samclr x c x epochs; x 2 seeds
    assert sorted(t.key for t in frozen) == ["frozen,encoder=dino,seed=0", "frozen,encoder=dino,seed=1", "frozen,encoder=r18,seed=0", "frozen,encoder=r18,seed=1"]
    assert all("encoder" not in t.key for t in trained)  # the encoder axis does not multiply trained trials
    r18 = next(t for t in frozen if t.key == "frozen,encoder=r18,seed=1")
    assert r18.store is None and r18.masker is None
    params = r18.params()
    assert params["model"] == "resnet18" and params["weights"] == str(tmp_path / "r18.pth") and params["seed"] == 1
    assert "epochs" not in params and "temperature" not in params and params["dataset"] == "-"
    assert "not pretrained by this sweep" in describe(plan)


def test_missing_weights_stop_the_plan_in_one_line_naming_the_file(tmp_path):
    with pytest.raises(SweepError, match=rf"^encoders\.r18\.weights: resnet18: weights file {tmp_path}/gone\.pth does not exist$"):
        make_plan(parse_sweep(sweep_text(tmp_path, f"{tmp_path}/gone.pth")), base=tmp_path)
    dry = make_plan(parse_sweep(sweep_text(tmp_path, f"{tmp_path}/gone.pth")), base=tmp_path, dry_run=True)
    assert any("gone.pth does not exist" in m for m in dry.missing)


def test_weights_missing_from_the_timm_cache_name_the_timm_model(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    text = sweep_text(tmp_path, "random").replace("model: dinov2_vits14, weights: random", "model: dinov2_vits14, weights: cache")
    with pytest.raises(SweepError, match=r"^encoders\.dino\.weights: dinov2_vits14: timm weights vit_small_patch14_dinov2\.lvd142m are not in"):
        make_plan(parse_sweep(text), base=tmp_path)
    fetch = text.replace("weights: cache", "weights: cache, download: true")
    assert make_plan(parse_sweep(fetch), base=tmp_path).trials  # download: true allows fetching it at run time


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("  encoder: [dino, r18]", "  encoder: [dino, vit]", r"<s>:13:\d+: grid\.encoder\.1: 'vit' is not in encoders \(dino, r18\)"),
        ("model: resnet18", "model: resnet34", r"<s>:10:\d+: encoders\.r18\.model: unknown encoder model 'resnet34'; known: sam_vit_tiny"),
        ("  encoder: [dino, r18]\n", "", r"<s>:\d+:\d+: grid\.method: method frozen evaluates frozen encoders: add an 'encoder' grid axis naming one of encoders \(dino, r18\)"),
        ("  encoder: [dino, r18]", "  weights: [random]", r"<s>:13:3: grid\.weights: 'weights' of a frozen encoder is set in its encoders entry"),
        ("workers: 0}", "workers: 0, model: resnet18}", r"<s>:\d+:\d+: train\.model: 'model' of a frozen encoder is set in its encoders entry"),
        ("weights: random, input_size: 28", "weights: random, input_size: 28, download: true", r"<s>:9:\d+: encoders\.dino: download: true fetches weights into the library cache: set weights: cache"),
        ("model: dinov2_vits14, weights: random, input_size: 28", "model: sam_vit_b, weights: random, input_size: 512", r"<s>:9:\d+: encoders\.dino: sam_vit_b: SAM's image encoder takes 1024 px only"),
        ("  dino: {", "  di no: {", r"<s>:9:\d+: encoders\.di no: name 'di no' must start"),
    ],
)
def test_bad_encoder_entries_fail_with_one_line_naming_the_place(tmp_path, old, new, expected):
    text = sweep_text(tmp_path)
    bad = text.replace(old, new, 1)
    assert bad != text, old
    with pytest.raises(SweepError, match=expected):
        parse_sweep(bad, "<s>")


def test_table3_reference_rows_share_table3s_eval_and_name_their_missing_weights(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from orchestrator.config import load_sweep
    from orchestrator.sweep import main

    experiments = Path(__file__).resolve().parents[2] / "experiments"
    monkeypatch.chdir(tmp_path)
    table3, frozen = load_sweep(experiments / "table3.yaml"), load_sweep(experiments / "table3_frozen.yaml")
    assert frozen.eval.sets == table3.eval.sets
    keep = ("knn_k", "knn_t", "linear_epochs", "linear_protocol")
    assert [getattr(frozen.eval.settings, k) for k in keep] == [getattr(table3.eval.settings, k) for k in keep]
    plan = make_plan(frozen, dry_run=True)
    models = {t.train.method_params["model"] for t in plan.trials}
    assert {t.train.method for t in plan.trials} == {"frozen"} and models == {"sam_vit_b", "sam_vit_h", "dinov2_vitb14", "clip_vitb16", "resnet50"}
    assert sum("weights file" in m for m in plan.missing) == 5 and not any(e.download for e in frozen.encoders.values())
    assert main([str(experiments / "table3_frozen.yaml")]) == 2  # a real run stops before Ray
    assert "does not exist" in capsys.readouterr().err


def test_smoke_mode_gives_frozen_encoders_random_weights_and_small_inputs(tmp_path, monkeypatch):
    from pathlib import Path

    from orchestrator.config import load_sweep
    from orchestrator.smoke import smoke_sweep

    monkeypatch.chdir(tmp_path)
    sweep = smoke_sweep(load_sweep(Path(__file__).resolve().parents[2] / "experiments" / "table3_frozen.yaml"))
    plan = make_plan(sweep, dry_run=True)
    assert not any("weights" in m for m in plan.missing)  # no checkpoint needed, nothing downloaded
    got = {t.train.method_params["encoder"]: (t.train.method_params["model"], t.train.method_params["weights"], t.train.method_params["input_size"]) for t in plan.trials}
    assert got == {
        "sam_vit_b": ("sam_vit_tiny", "random", None),
        "sam_vit_h": ("sam_vit_tiny", "random", None),
        "dinov2_vitb14": ("dinov2_vitb14", "random", 28),
        "clip_vitb16": ("clip_vitb16", "random", 32),
        "resnet50": ("resnet50", "random", 32),
    }
