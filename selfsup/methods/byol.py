"""BYOL (Grill et al., NeurIPS 2020): online network with a predictor regresses the momentum target.

lightly's BYOL heads (projection 1024 -> 256, predictor 1024 -> 256 as in lightly's example) and
``NegativeCosineSimilarity``; target momentum from 0.99 to 1 with a cosine schedule (Sec. 3.2);
symmetrised loss. BYOL has no temperature.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

from selfsup.methods.momentum import ema_momentum, ema_update, frozen_copy


class BYOL(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, hidden_dim: int = 1024, output_dim: int = 256, momentum: float = 0.99):
        super().__init__()
        self.backbone = backbone
        self.projection = BYOLProjectionHead(feature_dim, hidden_dim, output_dim)
        self.prediction = BYOLPredictionHead(output_dim, hidden_dim, output_dim)
        self.backbone_momentum = frozen_copy(backbone)
        self.projection_momentum = frozen_copy(self.projection)
        self.criterion = NegativeCosineSimilarity()
        self.momentum = momentum

    def on_step_start(self, step: int, total_steps: int) -> None:
        m = ema_momentum(step, total_steps, self.momentum)
        ema_update([(self.backbone, self.backbone_momentum), (self.projection, self.projection_momentum)], m)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x0, x1 = views[0], views[1]
        p0 = self.prediction(self.projection(self.backbone(x0)))
        p1 = self.prediction(self.projection(self.backbone(x1)))
        with torch.no_grad():
            z0 = self.projection_momentum(self.backbone_momentum(x0))
            z1 = self.projection_momentum(self.backbone_momentum(x1))
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
