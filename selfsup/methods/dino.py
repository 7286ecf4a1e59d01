"""DINO (Caron et al., ICCV 2021) with a ResNet18, multi-crop as in the SAMCLR paper (Sec. 4.1:
2 global 128 px + 6 local 64 px crops; with ``regions`` sampling all crops of an image come from
one enlarged region).

lightly's ``DINOProjectionHead`` (hidden 512, bottleneck 64, 2048 prototypes, last layer frozen
for the first epoch) and ``DINOLoss`` (teacher first, centring with momentum 0.9, teacher
temperature warmed up from 0.04); teacher momentum 0.996 -> 1 (cosine). The teacher's head is
built separately: ``deepcopy(DINOProjectionHead)`` raises (weight norm), so a fresh head is
loaded with the student's weights.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad

from selfsup.methods.momentum import ema_momentum, ema_update, frozen_copy

OUTPUT_DIM = 2048


def _head(feature_dim: int, freeze_last_layer: int) -> DINOProjectionHead:
    return DINOProjectionHead(feature_dim, 512, 64, OUTPUT_DIM, freeze_last_layer=freeze_last_layer)


class DINO(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, epochs: int, n_global: int = 2, momentum: float = 0.996):
        super().__init__()
        self.backbone = backbone
        self.head = _head(feature_dim, freeze_last_layer=1)
        self.teacher_backbone = frozen_copy(backbone)
        self.teacher_head = _head(feature_dim, freeze_last_layer=-1)
        self.teacher_head.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=OUTPUT_DIM, warmup_teacher_temp_epochs=min(30, max(1, epochs // 10)))
        self.n_global = n_global
        self.epochs = epochs
        self.momentum = momentum
        self._epoch = 0

    def on_step_start(self, step: int, total_steps: int) -> None:
        self._epoch = step * self.epochs // max(total_steps, 1)
        m = ema_momentum(step, total_steps, self.momentum)
        ema_update([(self.backbone, self.teacher_backbone), (self.head, self.teacher_head)], m)

    def on_after_backward(self, step: int, total_steps: int) -> None:
        self.head.cancel_last_layer_gradients(current_epoch=self._epoch)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            teacher = [self.teacher_head(self.teacher_backbone(v)) for v in views[: self.n_global]]
        student = [self.head(self.backbone(v)) for v in views]
        return self.criterion(teacher, student, epoch=self._epoch)
