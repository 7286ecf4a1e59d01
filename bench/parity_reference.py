"""Independent reference loops for ``bench/parity.py``, written from lightly 1.6's published
benchmark (docs/source/getting_started/benchmarks/imagenette_benchmark.py: SimCLRModel, MocoModel,
BYOLModel, DINOModel, SwaVModel).

Each method is what that benchmark does, in plain PyTorch instead of Lightning: lightly's
``LightlyDataset`` and transforms on the image folder, lightly's heads and losses, one forward pass
per view, constant EMA momentum 0.99, SGD lr 6e-2 · batch/256, momentum 0.9, weight decay 5e-4
(SwAV: Adam 1e-3 · batch/256, weight decay 1e-6) and ``CosineAnnealingLR(epochs)`` stepped once per
epoch, as Lightning does by default. Departures from the benchmark, all applied to every method
and to our side identically: the backbone is ``selfsup.backbone.resnet18(width, stem)`` (so only
training differs), view sizes are ``image_size`` (locals ``image_size // 2``), Gaussian blur of the small-image views
is off, as lightly does in its CIFAR-10 benchmark; and MoCo's
symmetric loss uses the official queue semantics (see ``MoCo``).

Nothing here imports ``selfsup.methods``, ``selfsup.training`` or our view sampler: that is what
makes the comparison independent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.data import LightlyDataset
from lightly.loss import DINOLoss, NegativeCosineSimilarity, NTXentLoss, SwaVLoss
from lightly.models import utils
from lightly.models.modules import heads
from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform, DINOTransform, SimCLRTransform, SwaVTransform

from selfsup.backbone import resnet18


@dataclass(frozen=True)
class RefSettings:
    image_size: int
    batch_size: int
    epochs: int
    backbone_width: int
    stem: str


def _ema_pair(module: nn.Module) -> nn.Module:
    twin = copy.deepcopy(module)
    utils.deactivate_requires_grad(twin)
    return twin


class SimCLR(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        self.backbone = backbone
        self.projection_head = heads.SimCLRProjectionHead(dim, dim, 128)
        self.criterion = NTXentLoss()  # temperature 0.5

    def training_step(self, views: list[torch.Tensor]) -> torch.Tensor:
        z0 = self.projection_head(self.backbone(views[0]))  # one forward (one BatchNorm batch) per view
        z1 = self.projection_head(self.backbone(views[1]))
        return self.criterion(z0, z1)

    def parameters_to_train(self) -> list[nn.Parameter]:
        return list(self.parameters())


class MoCo(nn.Module):
    """MoCo v2 as in lightly's MocoModel (head dim -> 2048 -> 128, tau 0.1, queue 4096, EMA 0.99),
    except the queue. lightly's benchmark calls ``NTXentLoss(memory_bank_size=...)`` twice; the first
    call enqueues k1, so the second term (q1 against k0) sees the key of its own view in its negatives.
    The official symmetric MoCo (facebookresearch/moco colab demo, moco-v3) scores both terms against
    the queue as it was before the step and then enqueues both keys: that is what is done here, with
    our own queue buffer. (lightly's batch shuffle is a no-op for BatchNorm on one device: left out.)"""

    def __init__(self, backbone: nn.Module, dim: int, queue_size: int = 4096, temperature: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.projection_head = heads.MoCoProjectionHead(dim, 2048, 128)
        self.backbone_momentum = _ema_pair(backbone)
        self.projection_head_momentum = _ema_pair(self.projection_head)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, 128), dim=1))
        self.ptr = 0
        self.temperature = temperature

    def _loss(self, q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ negatives.t()], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))

    def training_step(self, views: list[torch.Tensor]) -> torch.Tensor:
        utils.update_momentum(self.backbone, self.backbone_momentum, 0.99)
        utils.update_momentum(self.projection_head, self.projection_head_momentum, 0.99)
        x0, x1 = views[0], views[1]
        q0 = self.projection_head(self.backbone(x0))
        q1 = self.projection_head(self.backbone(x1))
        with torch.no_grad():
            k0 = self.projection_head_momentum(self.backbone_momentum(x0))
            k1 = self.projection_head_momentum(self.backbone_momentum(x1))
        negatives = self.queue.clone()  # both terms against the queue as it was before this step
        loss = 0.5 * (self._loss(q0, k1, negatives) + self._loss(q1, k0, negatives))
        with torch.no_grad():
            keys = F.normalize(torch.cat([k0, k1]), dim=1)
            idx = (self.ptr + torch.arange(len(keys))) % len(self.queue)
            self.queue[idx] = keys
            self.ptr = int((self.ptr + len(keys)) % len(self.queue))
        return loss

    def parameters_to_train(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters()) + list(self.projection_head.parameters())


class BYOL(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        self.backbone = backbone
        self.projection_head = heads.BYOLProjectionHead(dim, 4096, 256)
        self.prediction_head = heads.BYOLPredictionHead(256, 4096, 256)
        self.backbone_momentum = _ema_pair(backbone)
        self.projection_head_momentum = _ema_pair(self.projection_head)
        self.criterion = NegativeCosineSimilarity()

    def _online(self, x: torch.Tensor) -> torch.Tensor:
        return self.prediction_head(self.projection_head(self.backbone(x)))

    def _target(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.projection_head_momentum(self.backbone_momentum(x)).detach()

    def training_step(self, views: list[torch.Tensor]) -> torch.Tensor:
        utils.update_momentum(self.backbone, self.backbone_momentum, m=0.99)
        utils.update_momentum(self.projection_head, self.projection_head_momentum, m=0.99)
        x0, x1 = views[0], views[1]
        p0, z0, p1, z1 = self._online(x0), self._target(x0), self._online(x1), self._target(x1)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def parameters_to_train(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters()) + list(self.projection_head.parameters()) + list(self.prediction_head.parameters())


class DINO(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        self.backbone = backbone
        self.head = heads.DINOProjectionHead(dim, 2048, 256, 2048, batch_norm=True)
        self.teacher_backbone = _ema_pair(backbone)
        # as in the benchmark: a second, independently initialised head (deepcopy of this head raises)
        self.teacher_head = heads.DINOProjectionHead(dim, 2048, 256, 2048, batch_norm=True)
        utils.deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=2048)
        self.epoch = 0

    def training_step(self, views: list[torch.Tensor]) -> torch.Tensor:
        utils.update_momentum(self.backbone, self.teacher_backbone, m=0.99)
        utils.update_momentum(self.head, self.teacher_head, m=0.99)
        with torch.no_grad():
            teacher_out = [self.teacher_head(self.teacher_backbone(v)) for v in views[:2]]
        student_out = [self.head(self.backbone(v)) for v in views]
        return self.criterion(teacher_out, student_out, epoch=self.epoch)

    def parameters_to_train(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters()) + list(self.head.parameters())


class SwAV(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int):
        super().__init__()
        self.backbone = backbone
        self.projection_head = heads.SwaVProjectionHead(dim, 2048, 128)
        self.prototypes = heads.SwaVPrototypes(128, 3000)
        self.criterion = SwaVLoss()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prototypes(F.normalize(self.projection_head(self.backbone(x)), dim=1, p=2))

    def training_step(self, views: list[torch.Tensor]) -> torch.Tensor:
        self.prototypes.normalize()
        out = [self._forward(v) for v in views]
        return self.criterion(out[:2], out[2:])

    def parameters_to_train(self) -> list[nn.Parameter]:
        return list(self.parameters())


def transform(method: str, size: int):
    """The benchmark's transform for ``method`` at ``size`` px, blur off (as lightly's CIFAR-10 benchmark
    does for small images; solarisation stays, as there)."""
    local = max(8, size // 2)
    if method in ("simclr", "moco"):
        return SimCLRTransform(input_size=size, cj_strength=0.5, gaussian_blur=0.0)
    if method == "byol":
        return BYOLTransform(
            view_1_transform=BYOLView1Transform(input_size=size, gaussian_blur=0.0),
            view_2_transform=BYOLView2Transform(input_size=size, gaussian_blur=0.0),
        )
    if method == "dino":
        return DINOTransform(global_crop_size=size, local_crop_size=local, cj_strength=0.5, gaussian_blur=(0.0, 0.0, 0.0))
    if method == "swav":
        return SwaVTransform(crop_sizes=(size, local), crop_counts=(2, 6), cj_strength=0.5, gaussian_blur=0.0)
    raise ValueError(f"no reference loop for {method!r}")


MODELS = {"simclr": SimCLR, "moco": MoCo, "byol": BYOL, "dino": DINO, "swav": SwAV}


def train_reference(method: str, settings: RefSettings, seed: int, image_dir: str) -> nn.Module:
    """Pretrain with the reference loop; returns the backbone (pooled features, no head)."""
    torch.manual_seed(seed)
    backbone, dim = resnet18(settings.backbone_width, settings.stem)
    model = MODELS[method](backbone, dim)
    dataset = LightlyDataset(input_dir=image_dir, transform=transform(method, settings.image_size))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True, num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    lr_factor = settings.batch_size / 256
    if method == "swav":
        optimizer = torch.optim.Adam(model.parameters_to_train(), lr=1e-3 * lr_factor, weight_decay=1e-6)
    else:
        optimizer = torch.optim.SGD(model.parameters_to_train(), lr=6e-2 * lr_factor, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.epochs)
    model.train()
    for epoch in range(settings.epochs):
        model.epoch = epoch
        for views, _, _ in loader:
            loss = model.training_step(views)
            if not torch.isfinite(loss):
                raise RuntimeError(f"reference {method}: loss {loss.item()} at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()  # per epoch, as Lightning steps CosineAnnealingLR(max_epochs)
    return model.backbone
