"""Frozen encoders: weights from a file or a library cache (built here with random weights, nothing
downloaded), each pooled as its authors read it, and one-line errors for missing or wrong weights."""

import pytest
import safetensors.torch
import timm
import torch
import torchvision

from selfsup.encoders import (
    CLIP_MEAN,
    build_encoder,
    preprocessing,
    weights_problem,
)

DINO = "vit_small_patch14_dinov2.lvd142m"


def _dino_reference(seed: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(DINO, pretrained=False, dynamic_img_size=True).eval()


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Hugging Face and torch hub caches that hold nothing (this machine's real ones are not read)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_dinov2_from_the_hugging_face_cache_is_read_at_its_class_token(empty_caches):
    reference = _dino_reference()
    # the layout huggingface_hub writes: refs/main names the snapshot holding timm's file
    repo = empty_caches / "hf" / "models--timm--vit_small_patch14_dinov2.lvd142m"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    safetensors.torch.save_file(reference.state_dict(), repo / "snapshots" / "0123abcd" / "model.safetensors")

    assert weights_problem("dinov2_vits14", "cache") is None
    encoder = build_encoder("dinov2_vits14", "cache", input_size=28)
    x = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        expected = reference.forward_features(x)[:, 0]  # the normalised class token (DINOv2's x_norm_clstoken)
        assert torch.allclose(encoder(x), expected, atol=1e-5)
        assert not torch.allclose(build_encoder("dinov2_vits14", "random", input_size=28)(x), expected, atol=1e-2)
    assert encoder.dim == 384 and not any(p.requires_grad for p in encoder.parameters())


def test_dinov2_weights_file_and_its_evaluation_input(tmp_path):
    reference = _dino_reference(seed=5)
    path = tmp_path / "dinov2_vits14.pth"
    torch.save(reference.state_dict(), path)
    encoder = build_encoder("dinov2_vits14", str(path), input_size=42)
    x = torch.randn(2, 3, 42, 42)
    with torch.no_grad():
        assert torch.allclose(encoder(x), reference.forward_features(x)[:, 0], atol=1e-5)
    own = preprocessing("dinov2_vits14")
    assert (own.size, own.resize, own.interpolation) == (224, 256, "bicubic")  # dinov2/data/transforms.py
    assert (encoder.preprocessing.size, encoder.preprocessing.resize) == (42, 48)


def test_clip_is_read_before_its_projection():
    torch.manual_seed(0)
    encoder = build_encoder("clip_vitb32", "random", input_size=32)
    x = torch.randn(2, 3, 32, 32)
    net = encoder.net
    with torch.no_grad():
        out = encoder(x)
        assert out.shape == (2, 768)  # the width of the tower, not the 512-d joint embedding
        assert torch.allclose(out, net.forward_head(net.forward_features(x), pre_logits=True))
    assert encoder.preprocessing.mean == CLIP_MEAN and preprocessing("clip_vitb32").size == 224


def test_resnet_from_the_torch_hub_cache_is_read_at_its_average_pool(empty_caches):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().eval()
    problem = weights_problem("resnet18", "cache")
    assert problem is not None and "resnet18-f37072fd.pth not found" in problem and "download: true" in problem
    checkpoints = empty_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    assert weights_problem("resnet18", "cache") is None
    encoder = build_encoder("resnet18", "cache")
    x = torch.randn(2, 3, 64, 64)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        assert torch.allclose(encoder(x), reference(x), atol=1e-5)
    assert encoder.dim == 512
    with pytest.raises(ValueError, match=r"^resnet50: weights .*resnet18-f37072fd\.pth do not match resnet50 \("):
        build_encoder("resnet50", str(checkpoints / "resnet18-f37072fd.pth"))


def test_missing_weights_name_the_file_or_the_timm_name(empty_caches):
    missing = empty_caches / "nope.pth"
    assert weights_problem("dinov2_vitb14", str(missing)) == f"dinov2_vitb14: weights file {missing} does not exist"
    problem = weights_problem("clip_vitb16", "cache")
    assert "vit_base_patch16_clip_quickgelu_224.openai" in problem and "download: true" in problem
    assert "no library cache" in weights_problem("sam_vit_b", "cache")
    assert weights_problem("clip_vitb16", "cache", download=True) is None  # allowed to fetch it, so no problem
    with pytest.raises(FileNotFoundError, match="vit_small_patch14_dinov2.lvd142m are not in the Hugging Face cache"):
        build_encoder("dinov2_vits14", "cache")
    with pytest.raises(ValueError, match="takes 1024 px only"):
        preprocessing("sam_vit_b", 512)


@pytest.mark.slow  # two HQ-SAM encoder passes at 1024 px
def test_sam_encoder_from_an_hqsam_checkpoint_averages_its_embedding(tmp_path):
    from masking.hqsam_generator import build_hqsam

    torch.manual_seed(2)
    path = tmp_path / "sam_hq_vit_tiny.pth"
    torch.save(build_hqsam("vit_tiny", None).state_dict(), path)
    encoder = build_encoder("sam_vit_tiny", str(path))
    reference = build_hqsam("vit_tiny", path).image_encoder  # the masker's own loader, read independently
    x = torch.randn(1, 3, 1024, 1024)
    with torch.no_grad():
        embedding = reference(x)[0]
        assert embedding.shape == (1, 256, 64, 64)
        assert torch.allclose(encoder(x), embedding.mean(dim=(2, 3)), atol=1e-5)
    assert encoder.dim == 256 and encoder.preprocessing.size == 1024
