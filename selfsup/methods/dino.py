"""DINO (Caron et al., ICCV 2021) with a ResNet18 and multi-crop (SAMCLR paper, Sec. 4.1: 2 global
128 px + 6 local 64 px crops; with ``regions`` sampling every crop of an image comes from one
enlarged region).

lightly's ``DINOProjectionHead`` and ``DINOLoss`` (teacher first, centring, teacher-temperature
warm-up); the teacher sees the global crops only; DINO's own augmentations (lightly's
``DINOTransform``). The teacher's head is built separately (``deepcopy(DINOProjectionHead)``
raises, weight norm) and starts from the student's weights, as DINO's code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad

from selfsup.methods.momentum import ema_momentum, ema_update, frozen_copy
from selfsup.methods.settings import Dim, EmaSchedule, EmaStart, MethodSettings, Positive, Scale


@dataclass(frozen=True)
class DINOSettings(MethodSettings):
    hidden_dim: Dim = 2048
    bottleneck_dim: Dim = 256
    output_dim: Dim = 2048
    batch_norm: bool = True
    freeze_last_layer: int = -1
    """Epochs during which the head's last layer gets no gradient (-1: never)."""
    ema: EmaStart = 0.99
    ema_schedule: EmaSchedule = "constant"
    teacher_temp: Positive = 0.04
    warmup_teacher_temp: Positive = 0.04
    warmup_teacher_temp_epochs: int = 30
    student_temp: Positive = 0.1
    center_momentum: float = 0.9
    global_scale: Scale = (0.4, 1.0)
    local_scale: Scale = (0.05, 0.4)
    n_local: int = 6


PRESETS = {
    # lightly's ImageNette benchmark, DINOModel: DINOProjectionHead(512, 2048, 256, 2048, batch_norm=True),
    # EMA 0.99, DINOLoss(output_dim=2048) with its defaults, SGD 0.06 x bs/256, wd 5e-4;
    # DINOTransform(global 128, local 64, cj_strength=0.5): scales (0.4, 1) and (0.05, 0.4).
    "lightly": DINOSettings(),
    # DINO (Caron et al. 2021) for ResNet-50, facebookresearch/dino README and main_dino.py defaults:
    # SGD lr 0.03 x bs/256, wd 1e-4, crops (0.14, 1) and (0.05, 0.14), head 2048/256/65536 without BN,
    # last layer frozen for 1 epoch, teacher momentum 0.996 -> 1 (cosine), teacher temperature 0.04.
    "paper": DINOSettings(
        output_dim=65536, batch_norm=False, freeze_last_layer=1, ema=0.996, ema_schedule="cosine",
        warmup_teacher_temp_epochs=0, global_scale=(0.14, 1.0), local_scale=(0.05, 0.14),
        base_lr=0.03, weight_decay=1e-4,
    ),
}


class DINO(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, settings: DINOSettings = DINOSettings(), epochs: int = 100):
        super().__init__()
        self.settings = s = settings
        self.backbone = backbone
        self.head = self._head(feature_dim, s.freeze_last_layer)
        self.teacher_backbone = frozen_copy(backbone)
        self.teacher_head = self._head(feature_dim, -1)
        self.teacher_head.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(
            output_dim=s.output_dim, warmup_teacher_temp=s.warmup_teacher_temp, teacher_temp=s.teacher_temp,
            warmup_teacher_temp_epochs=s.warmup_teacher_temp_epochs, student_temp=s.student_temp,
            center_momentum=s.center_momentum,
        )
        self.n_global = 2
        self.epochs = epochs
        self._epoch = 0

    def _head(self, feature_dim: int, freeze_last_layer: int) -> DINOProjectionHead:
        s = self.settings
        return DINOProjectionHead(
            feature_dim, s.hidden_dim, s.bottleneck_dim, s.output_dim, batch_norm=s.batch_norm, freeze_last_layer=freeze_last_layer
        )

    def on_step_start(self, step: int, total_steps: int) -> None:
        self._epoch = step * self.epochs // max(total_steps, 1)
        m = ema_momentum(step, total_steps, self.settings.ema, self.settings.ema_schedule)
        ema_update([(self.backbone, self.teacher_backbone), (self.head, self.teacher_head)], m)

    def on_after_backward(self, step: int, total_steps: int) -> None:
        self.head.cancel_last_layer_gradients(current_epoch=self._epoch)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            teacher = [self.teacher_head(self.teacher_backbone(v)) for v in views[: self.n_global]]
        student = [self.head(self.backbone(v)) for v in views]
        return self.criterion(teacher, student, epoch=self._epoch)
