"""Training on CUDA: mixed precision (bf16, and fp16 with the grad scaler) and channels_last.

CUDA only (``pytest -m cuda``; ``bench/gpu_check.sh`` runs them on the GPU machine); skipped elsewhere.
"""

import math

import pytest
import torch

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def cuda_run(synthetic, boxes, **overrides):
    from selfsup.config import EvalConfig, TrainConfig
    from selfsup.training import Pretraining

    settings = {"method": "samclr", "epochs": 2, "batch_size": 16, "image_size": 32, "backbone_width": 8, "stem": "cifar",
                "input": "gpu", "workers": 0, "device": "cuda"}
    return Pretraining(TrainConfig(**{**settings, **overrides}), EvalConfig(every=100, linear_epochs=0), synthetic.images, [],
                       boxes_of=boxes.__getitem__)


def first_conv(run) -> torch.nn.Conv2d:
    return next(m for m in run.model.backbone.modules() if isinstance(m, torch.nn.Conv2d))


def test_bf16_autocast_runs_the_convolutions_in_bf16_without_a_scaler(synthetic, boxes):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    run = cuda_run(synthetic, boxes)
    seen = []
    first_conv(run).register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    history = run.fit()
    assert run.amp_dtype == torch.bfloat16 and not run.scaler.is_enabled()
    assert run.device_images.pixels.is_cuda and run.dataset.cache.nbytes == 0  # the host keeps no second copy
    assert seen and set(seen) == {torch.bfloat16}
    assert all(math.isfinite(m["train/loss"]) for m in history)
    assert any(not torch.equal(before[k], v) for k, v in run.model.state_dict().items() if v.is_floating_point())


def test_fp16_autocast_trains_through_the_grad_scaler_and_resumes_its_state(synthetic, boxes, tmp_path, monkeypatch):
    """A GPU without bf16 (V100, T4) trains in fp16 with a dynamic loss scale, saved in checkpoints."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    run = cuda_run(synthetic, boxes)
    assert run.amp_dtype == torch.float16 and run.scaler.is_enabled()
    seen = []
    first_conv(run).register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    start_scale = run.scaler.get_scale()
    history = run.fit(lambda metrics, trainer: trainer.save(tmp_path / "ckpt.pt"))
    assert set(seen) == {torch.float16}
    assert all(math.isfinite(m["train/loss"]) for m in history)
    scale, state = run.scaler.get_scale(), run.scaler.state_dict()
    halvings = math.log2(start_scale / scale)  # each overflowing step halved it (no growth within 2000 steps)
    assert halvings == int(halvings) >= 0
    assert state["_growth_tracker"] >= 1  # the scaler stepped: at least the last step was not skipped
    resumed = cuda_run(synthetic, boxes)
    resumed.restore(tmp_path / "ckpt.pt")
    assert resumed.scaler.get_scale() == scale
    assert resumed.scaler.state_dict() == run.scaler.state_dict()


def test_grad_scaler_skips_the_step_whose_gradients_overflow(synthetic, boxes, monkeypatch):
    """The fp16 path's safety net: an inf gradient skips the optimiser step and halves the scale."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    run = cuda_run(synthetic, boxes, epochs=1)
    weights = {k: v.clone() for k, v in run.model.named_parameters()}
    poisoned = next(p for p in run.model.parameters() if p.requires_grad)
    poisoned.register_hook(lambda grad: torch.full_like(grad, float("inf")))
    scale = run.scaler.get_scale()
    run.fit()
    steps = run.steps_per_epoch
    assert run.scaler.get_scale() == scale * 0.5**steps  # every step overflowed, every step halved the scale
    for name, p in run.model.named_parameters():
        assert torch.equal(p, weights[name]), f"{name} changed although every step was skipped"


def test_channels_last_model_and_views_give_the_nchw_loss(synthetic, boxes):
    run = cuda_run(synthetic, boxes, amp=False, epochs=1)
    convs = [m for m in run.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    layouts = []
    first_conv(run).register_forward_pre_hook(
        lambda module, inputs: layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last)))
    run.fit()
    assert layouts and all(layouts)
    # the same weights in NCHW give the same loss on the same views (fp32, TF32 off)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        run.model.eval()
        views = [torch.rand(4, 3, 32, 32, device="cuda") for _ in range(2)]
        with torch.no_grad():
            channels_last = run.model([v.contiguous(memory_format=torch.channels_last) for v in views])
            run.model.to(memory_format=torch.contiguous_format)
            nchw = run.model(views)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert torch.allclose(channels_last, nchw, rtol=1e-4, atol=1e-5)
