"""Backbones: torchvision's ResNet18, from scratch (SAMCLR paper, Sec. 4.1), with two options.

- ``stem="cifar"`` swaps the 7x7/stride-2 convolution and the max-pool for one 3x3/stride-1
  convolution, the usual choice for 32-64 px inputs.
- ``width`` scales every stage (64 -> 64, 128, 256, 512, torchvision's ResNet18). Smaller widths make
  CPU runs fast; the paper's setting is 64.

The classifier is removed: the backbone returns pooled features (the representation that KNN and
the linear probe read, before any projection head).

``export_backbone`` writes a trained backbone as a plain state dict (``backbone.pt``: the keys of
torchvision's ResNet without ``fc``) and the settings that rebuild it (``backbone.json``: width,
stem); ``load_backbone`` reads the pair back. With the paper's width 64 and the imagenet stem,
``torchvision.models.resnet18()`` with ``fc = nn.Identity()`` loads the state dict as it is.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet

STEMS = ("imagenet", "cifar")


class _ScaledResNet(ResNet):
    """torchvision's ResNet with every stage's width multiplied by ``width / 64``."""

    def __init__(self, layers: list[int], width: int):
        self._width = width
        super().__init__(BasicBlock, layers)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # noqa: ANN001 - torchvision's signature
        if planes == 64:  # first stage: the stem's output has ``width`` channels too
            self.inplanes = self._width
        return super()._make_layer(block, planes * self._width // 64, blocks, stride, dilate)


def resnet18(width: int = 64, stem: str = "imagenet") -> tuple[nn.Module, int]:
    """A ResNet18 backbone and its feature dimension (8 x width; 512 for the standard model)."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; known: {', '.join(STEMS)}")
    if width < 8 or width % 8:
        raise ValueError(f"backbone width must be a positive multiple of 8, got {width}")
    model = _ScaledResNet([2, 2, 2, 2], width)
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.fc = nn.Identity()
    return model, 8 * width


WEIGHTS_FILE = "backbone.pt"
SETTINGS_FILE = "backbone.json"


def export_backbone(model: nn.Module, width: int, stem: str) -> dict[str, bytes]:
    """File name -> bytes: the backbone's state dict on the CPU in the standard memory format, and
    the JSON settings that rebuild it with ``resnet18(width, stem)``."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    settings = {"architecture": "resnet18", "width": width, "stem": stem, "feature_dim": 8 * width}
    return {WEIGHTS_FILE: buffer.getvalue(), SETTINGS_FILE: json.dumps(settings, indent=1).encode()}


def load_backbone(folder: str | Path) -> nn.Module:
    """The backbone ``export_backbone`` wrote into ``folder``, weights loaded (strictly)."""
    settings = json.loads((Path(folder) / SETTINGS_FILE).read_text())
    model, _ = resnet18(settings["width"], settings["stem"])
    model.load_state_dict(torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    return model
