"""MoCo v2 (Chen et al., 2020, "Improved baselines with momentum contrastive learning").

Query encoder + MLP head, momentum key encoder (m from 0.99 to 1, cosine), a queue of 4096 keys
as negatives (lightly's ``NTXentLoss(memory_bank_size=...)``), temperature 0.2 (MoCo v2, Sec. 2),
symmetrised over the two views as in lightly's benchmarks. lightly's memory bank is a
non-persistent buffer: the queue is saved here through ``get_extra_state``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead

from selfsup.methods.momentum import ema_momentum, ema_update, frozen_copy

QUEUE_SIZE = 4096


class MoCo(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, temperature: float = 0.2, queue_size: int = QUEUE_SIZE, output_dim: int = 128, momentum: float = 0.99):
        super().__init__()
        self.backbone = backbone
        self.projection = MoCoProjectionHead(feature_dim, feature_dim, output_dim)
        self.backbone_momentum = frozen_copy(backbone)
        self.projection_momentum = frozen_copy(self.projection)
        self.criterion = NTXentLoss(temperature=temperature, memory_bank_size=(queue_size, output_dim))
        self.momentum = momentum

    def on_step_start(self, step: int, total_steps: int) -> None:
        m = ema_momentum(step, total_steps, self.momentum)
        ema_update([(self.backbone, self.backbone_momentum), (self.projection, self.projection_momentum)], m)

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.projection_momentum(self.backbone_momentum(x)).detach()

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x0, x1 = views[0], views[1]
        q0, q1 = self.projection(self.backbone(x0)), self.projection(self.backbone(x1))
        k0, k1 = self._keys(x0), self._keys(x1)
        return 0.5 * (self.criterion(q0, k1) + self.criterion(q1, k0))

    def get_extra_state(self) -> dict:
        bank = self.criterion.memory_bank
        return {"queue": bank.bank.clone(), "queue_ptr": bank.bank_ptr.clone()}

    def set_extra_state(self, state: dict) -> None:
        bank = self.criterion.memory_bank
        bank.bank = state["queue"].to(bank.bank.device)
        bank.bank_ptr = state["queue_ptr"].to(bank.bank_ptr.device)
