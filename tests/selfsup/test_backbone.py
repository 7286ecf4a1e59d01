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
