"""SimCLR (Chen et al., ICML 2020) from lightly's projection head and NT-Xent loss.

SAMCLR is this method with region-guided views (``sampling: regions``) and temperature 0.07
(SAMCLR paper, Sec. 4.1); its SimCLR baseline ran at lightly's default temperature 0.5.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead


class SimCLR(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, temperature: float = 0.5, output_dim: int = 128):
        super().__init__()
        self.backbone = backbone
        self.projection = SimCLRProjectionHead(feature_dim, feature_dim, output_dim)
        self.criterion = NTXentLoss(temperature=temperature)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        """NT-Xent between the first two views of every image in the batch."""
        x0, x1 = views[0], views[1]
        z = self.projection(self.backbone(torch.cat([x0, x1])))
        z0, z1 = z.chunk(2)
        return self.criterion(z0, z1)
