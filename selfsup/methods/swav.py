"""SwAV (Caron et al., NeurIPS 2020): swapped prediction of Sinkhorn codes over prototypes.

lightly's ``SwaVProjectionHead`` (-> 128), 512 ``SwaVPrototypes`` (frozen for the first epoch's
steps as in lightly's example, re-normalised every step) and ``SwaVLoss`` (temperature 0.1,
3 Sinkhorn iterations, epsilon 0.05); multi-crop with 2 high-resolution and 6 low-resolution
crops, codes computed from the high-resolution ones. No queue (small batches here).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from lightly.loss import SwaVLoss
from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes


class SwAV(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, epochs: int, temperature: float = 0.1, n_high: int = 2, n_prototypes: int = 512):
        super().__init__()
        self.backbone = backbone
        self.projection = SwaVProjectionHead(feature_dim, feature_dim, 128)
        self.prototypes = SwaVPrototypes(128, n_prototypes=n_prototypes, n_steps_frozen_prototypes=1)
        self.criterion = SwaVLoss(temperature=temperature)
        self.n_high = n_high
        self.epochs = epochs
        self._step = 0

    def on_step_start(self, step: int, total_steps: int) -> None:
        self._step = step
        self.prototypes.n_steps_frozen_prototypes = max(1, total_steps // self.epochs)  # the first epoch
        self.prototypes.normalize()

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        z = [nn.functional.normalize(self.projection(self.backbone(v)), dim=1) for v in views]
        p = [self.prototypes(x, self._step) for x in z]
        return self.criterion(p[: self.n_high], p[self.n_high :])
