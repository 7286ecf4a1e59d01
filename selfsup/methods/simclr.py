"""SimCLR (Chen et al., ICML 2020) from lightly's projection head and NT-Xent loss.

SAMCLR is this method with region-guided views (``sampling: regions``) at temperature 0.07
(SAMCLR paper, Sec. 4.1). The paper says its baselines used lightly's default hyperparameters, whose
SimCLR temperature is 0.5; the SAMCLR reference repository's own SimCLR config uses 0.07, so the
paper's SimCLR row may have run at either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead

from selfsup.methods.settings import Dim, Fraction, MethodSettings, Positive


@dataclass(frozen=True)
class SimCLRSettings(MethodSettings):
    temperature: Positive = 0.5
    hidden_dim: Dim | None = None
    """Hidden width of the projection head; None: the backbone's feature dimension (SimCLR, lightly)."""
    output_dim: Dim = 128
    min_scale: Fraction = 0.08
    views_in_one_batch: bool = False
    """True: both views through the backbone in one forward pass (one BatchNorm batch of 2B views);
    False: one forward pass per view, as lightly's benchmark and example do."""


PRESETS = {
    # lightly's ImageNette benchmark, SimCLRModel: head feature -> feature -> 128, NTXentLoss() (tau 0.5),
    # SGD 0.06 x bs/256, momentum 0.9, wd 5e-4; SimCLRTransform(cj_strength=0.5): min scale 0.08, blur 0.5.
    "lightly": SimCLRSettings(),
    # SimCLR (Chen et al. 2020), Sec. 2.3 and Appendix B.1: LARS, lr 0.3 x bs/256, wd 1e-6, tau 0.1
    # (the value of its Table 5 used for ImageNet), colour strength 1.0, blur p 0.5, head -> 128.
    "paper": SimCLRSettings(temperature=0.1, optimizer="lars", base_lr=0.3, weight_decay=1e-6, cj_strength=1.0),
}

# SAMCLR: SimCLR's lightly values with the SAMCLR paper's temperature 0.07 (Sec. 4.1) in both presets: the
# paper names no other value of its own and says its baselines used lightly's defaults.
SAMCLR_PRESETS = {"lightly": SimCLRSettings(temperature=0.07), "paper": SimCLRSettings(temperature=0.07)}


class SimCLR(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, settings: SimCLRSettings = SimCLRSettings()):
        super().__init__()
        self.settings = s = settings
        self.backbone = backbone
        self.projection = SimCLRProjectionHead(feature_dim, s.hidden_dim or feature_dim, s.output_dim)
        self.criterion = NTXentLoss(temperature=s.temperature)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        """NT-Xent between the first two views of every image in the batch."""
        x0, x1 = views[0], views[1]
        if self.settings.views_in_one_batch:
            z0, z1 = self.projection(self.backbone(torch.cat([x0, x1]))).chunk(2)
        else:
            z0, z1 = self.projection(self.backbone(x0)), self.projection(self.backbone(x1))
        return self.criterion(z0, z1)
