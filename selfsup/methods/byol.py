"""BYOL (Grill et al., NeurIPS 2020): online network with a predictor regresses the momentum target.

lightly's ``BYOLProjectionHead``, ``BYOLPredictionHead`` and ``NegativeCosineSimilarity``;
symmetrised loss; BYOL's two asymmetric views (lightly's ``BYOLView1Transform`` and
``BYOLView2Transform``: blur 1.0 / 0.1, solarisation 0 / 0.2). BYOL has no temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

from selfsup.methods.momentum import MomentumTeacher
from selfsup.methods.settings import Dim, EmaSchedule, EmaStart, Fraction, JitterStrength, MethodSettings


@dataclass(frozen=True)
class BYOLSettings(MethodSettings):
    hidden_dim: Dim = 4096
    output_dim: Dim = 256
    prediction_hidden_dim: Dim = 4096
    ema: EmaStart = 0.99
    ema_schedule: EmaSchedule = "constant"
    min_scale: Fraction = 0.08
    cj_strength: JitterStrength = 1.0
    """BYOLView1/2Transform: jitter 0.4/0.4/0.2/0.1 at strength 1."""


PRESETS = {
    # lightly's ImageNette benchmark, BYOLModel: heads 4096 -> 256, predictor 4096 -> 256, EMA 0.99,
    # SGD 0.06 x bs/256, wd 5e-4; BYOLTransform with its defaults.
    "lightly": BYOLSettings(),
    # BYOL (Grill et al. 2020), Sec. 3.3 and Appendix B: LARS, lr 0.2 x bs/256, wd 1.5e-6,
    # target momentum 0.996 -> 1 (cosine), projector and predictor 4096 -> 256.
    "paper": BYOLSettings(optimizer="lars", base_lr=0.2, weight_decay=1.5e-6, ema=0.996, ema_schedule="cosine"),
}


class BYOL(MomentumTeacher):
    def __init__(self, backbone: nn.Module, feature_dim: int, settings: BYOLSettings = BYOLSettings()):
        s = settings
        super().__init__(backbone, BYOLProjectionHead(feature_dim, s.hidden_dim, s.output_dim), settings)
        self.prediction = BYOLPredictionHead(s.output_dim, s.prediction_hidden_dim, s.output_dim)
        self.criterion = NegativeCosineSimilarity()

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x0, x1 = views[0], views[1]
        p0 = self.prediction(self.projection(self.backbone(x0)))
        p1 = self.prediction(self.projection(self.backbone(x1)))
        z0, z1 = self.teacher(x0), self.teacher(x1)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
