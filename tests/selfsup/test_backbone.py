import torch
import torchvision

from selfsup.backbone import resnet18


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_width_64_is_torchvisions_resnet18_without_classifier():
    model, dim = resnet18()
    reference = torchvision.models.resnet18()
    assert dim == 512
    assert n_params(model) == n_params(reference) - n_params(reference.fc)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 512)


def test_narrow_cifar_stem_backbone():
    model, dim = resnet18(width=16, stem="cifar")
    assert dim == 128
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 128)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert n_params(model) < n_params(resnet18()[0]) / 10


def test_exported_backbone_loads_into_torchvisions_resnet18_and_back(tmp_path):
    """The paper's backbone (width 64, imagenet stem) as exported: torchvision's own resnet18, its
    classifier replaced by an identity, loads the state dict strictly and computes the same features;
    ``load_backbone`` rebuilds narrower ones from the JSON settings."""
    from selfsup.backbone import export_backbone, load_backbone

    model, _ = resnet18()
    model.eval()
    for name, data in export_backbone(model, 64, "imagenet").items():
        (tmp_path / name).write_bytes(data)
    reference = torchvision.models.resnet18()
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(torch.load(tmp_path / "backbone.pt", weights_only=True))
    reference.eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(reference(x), model(x))

    narrow, _ = resnet18(width=16, stem="cifar")
    narrow.eval()
    for name, data in export_backbone(narrow, 16, "cifar").items():
        (tmp_path / name).write_bytes(data)
    rebuilt = load_backbone(tmp_path).eval()
    assert rebuilt.conv1.kernel_size == (3, 3) and torch.equal(rebuilt(x), narrow(x))
