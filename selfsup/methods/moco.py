"""MoCo v2 (Chen et al. 2020, "Improved baselines with momentum contrastive learning", arXiv:2003.04297).

Query encoder + MLP head (lightly's ``MoCoProjectionHead``), a momentum key encoder and a queue of
past keys as negatives. InfoNCE (He et al. 2020, Eq. 1): ``-log exp(q.k+/t) / sum(exp(q.k+/t),
exp(q.n/t) for n in queue)`` on L2-normalised vectors, as lightly's ``NTXentLoss`` with a memory bank.

The symmetric loss (both views as queries) scores **both** terms against the queue as it was before
the step and then enqueues both keys, as the official symmetric MoCo does (the MoCo CIFAR-10 demo
lightly's benchmark cites). lightly's ``NTXentLoss(memory_bank_size=...)`` enqueues on every call,
so calling it twice (lightly's ImageNette benchmark does) makes the first key a negative of the
second term although it encodes the same view as that term's query; hence the loss is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.models.modules import MoCoProjectionHead

from selfsup.methods.momentum import KeyQueue, MomentumTeacher
from selfsup.methods.settings import Dim, EmaSchedule, EmaStart, Fraction, MethodSettings, Positive


@dataclass(frozen=True)
class MoCoSettings(MethodSettings):
    temperature: Positive = 0.1
    hidden_dim: Dim | None = 2048
    """Hidden width of the projection head; None: the backbone's feature dimension (MoCo v2's code)."""
    output_dim: Dim = 128
    queue_size: Dim = 4096
    ema: EmaStart = 0.99
    ema_schedule: EmaSchedule = "constant"
    symmetric: bool = True
    """Both views as queries (lightly's benchmark); MoCo v2's code uses one direction."""
    min_scale: Fraction = 0.08


PRESETS = {
    # lightly's ImageNette benchmark, MocoModel: head 2048 -> 128, tau 0.1, memory bank 4096, EMA 0.99,
    # symmetric loss, SGD 0.06 x bs/256, wd 5e-4; SimCLRTransform(cj_strength=0.5), min scale 0.08.
    "lightly": MoCoSettings(),
    # MoCo v2 (arXiv:2003.04297, Sec. 2-3; facebookresearch/moco main_moco.py): tau 0.2, MLP head of
    # the feature width -> 128, queue 65536, momentum 0.999, SGD 0.03 x bs/256, wd 1e-4, one direction;
    # augmentation: crop scale (0.2, 1), jitter 0.4/0.4/0.4/0.1 (strength 0.5), blur p 0.5.
    # The queue holds 65536 keys: more than Cityscapes' 2975 images, so it repeats images as negatives.
    "paper": MoCoSettings(
        temperature=0.2, hidden_dim=None, queue_size=65536, ema=0.999, symmetric=False,
        base_lr=0.03, weight_decay=1e-4, min_scale=0.2,
    ),
}


def infonce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE with the positive first (He et al. 2020, Eq. 1); inputs need not be normalised."""
    q, k = F.normalize(query, dim=1), F.normalize(key, dim=1)
    logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ negatives.t().to(q.dtype)], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


class MoCo(MomentumTeacher):
    def __init__(self, backbone: nn.Module, feature_dim: int, settings: MoCoSettings = MoCoSettings()):
        s = settings
        super().__init__(backbone, MoCoProjectionHead(feature_dim, s.hidden_dim or feature_dim, s.output_dim), settings)
        self.queue = KeyQueue(s.queue_size, s.output_dim)

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.teacher(x), dim=1)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x0, x1 = views[0], views[1]
        t = self.settings.temperature
        negatives = self.queue.snapshot()  # the queue before this step, for every term
        q0, k1 = self.projection(self.backbone(x0)), self._keys(x1)
        if not self.settings.symmetric:
            loss = infonce(q0, k1, negatives, t)
            self.queue.push(k1)
            return loss
        q1, k0 = self.projection(self.backbone(x1)), self._keys(x0)
        loss = 0.5 * (infonce(q0, k1, negatives, t) + infonce(q1, k0, negatives, t))
        self.queue.push(torch.cat([k0, k1]))
        return loss
