"""SwAV (Caron et al., NeurIPS 2020): swapped prediction of Sinkhorn codes over prototypes.

lightly's ``SwaVProjectionHead``, ``SwaVPrototypes`` (re-normalised every step, optionally frozen
for the first epochs) and ``SwaVLoss``; multi-crop with high- and low-resolution crops (lightly's
``SwaVTransform``), codes computed from the high-resolution ones. No queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from lightly.loss import SwaVLoss
from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

from selfsup.methods.settings import Dim, MethodSettings, Positive, Scale


@dataclass(frozen=True)
class SwAVSettings(MethodSettings):
    hidden_dim: Dim = 2048
    output_dim: Dim = 128
    n_prototypes: Dim = 3000
    temperature: Positive = 0.1
    sinkhorn_iterations: Dim = 3
    sinkhorn_epsilon: Positive = 0.05
    freeze_prototypes_epochs: int = 0
    high_scale: Scale = (0.14, 1.0)
    low_scale: Scale = (0.05, 0.14)
    n_low: int = 6


PRESETS = {
    # lightly's ImageNette benchmark, SwaVModel: head 512 -> 2048 -> 128, 3000 prototypes, SwaVLoss()
    # (tau 0.1, 3 Sinkhorn iterations, epsilon 0.05), Adam lr 1e-3 x bs/256, wd 1e-6;
    # SwaVTransform(crop_sizes=(128, 64), crop_counts=(2, 6), cj_strength=0.5): scales (0.14, 1), (0.05, 0.14).
    "lightly": SwAVSettings(optimizer="adam", base_lr=1e-3, weight_decay=1e-6),
    # SwAV (Caron et al. 2020), Sec. 4 and Appendix A: LARS, lr 4.8 at batch 4096 (0.3 x bs/256), wd 1e-6,
    # prototypes frozen during the first epoch, colour strength 1.0.
    "paper": SwAVSettings(optimizer="lars", base_lr=0.3, weight_decay=1e-6, freeze_prototypes_epochs=1, cj_strength=1.0),
}


class SwAV(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, settings: SwAVSettings = SwAVSettings(), epochs: int = 100):
        super().__init__()
        self.settings = s = settings
        self.backbone = backbone
        self.projection = SwaVProjectionHead(feature_dim, s.hidden_dim, s.output_dim)
        self.prototypes = SwaVPrototypes(s.output_dim, n_prototypes=s.n_prototypes)
        self.criterion = SwaVLoss(temperature=s.temperature, sinkhorn_iterations=s.sinkhorn_iterations, sinkhorn_epsilon=s.sinkhorn_epsilon)
        self.n_high = 2
        self.epochs = epochs
        self._step = 0

    def on_step_start(self, step: int, total_steps: int) -> None:
        self._step = step
        steps_per_epoch = max(1, total_steps // self.epochs)
        self.prototypes.n_steps_frozen_prototypes = self.settings.freeze_prototypes_epochs * steps_per_epoch
        self.prototypes.normalize()

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        z = [nn.functional.normalize(self.projection(self.backbone(v)), dim=1) for v in views]
        p = [self.prototypes(x, self._step) for x in z]
        return self.criterion(p[: self.n_high], p[self.n_high :])
