"""SCE, Similarity Contrastive Estimation (Denize et al., WACV 2023).

A momentum teacher gives, for each image, a similarity distribution over the other images (the
queue); the student's target mixes the one-hot of its positive with that distribution:

    w_i  = lambda * onehot(positive) + (1 - lambda) * s_i,
    s_ik = exp(z'_i . z'_k / tau_m) / sum_{j != i} exp(z'_i . z'_j / tau_m)  for k != i, s_ii = 0,
    p_ik = exp(z_i . z'_k / tau) / sum_j exp(z_i . z'_j / tau),
    L    = - mean_i sum_k w_ik log p_ik,

where z is the student's prediction and z' the teacher's projection, both L2-normalised, and the
"others" are the queue of past teacher embeddings. The paper's values: lambda = 0.5, tau = 0.1,
tau_m = 0.07 (Sec. 4); teacher momentum 0.99 -> 1; queue 4096 (small-data setting); MoCo-style
projector and a predictor on the student. Symmetrised over the two views.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.models.modules import BYOLPredictionHead, MoCoProjectionHead

from selfsup.methods.momentum import ema_momentum, ema_update, frozen_copy


def sce_loss(student: torch.Tensor, teacher: torch.Tensor, queue: torch.Tensor, coeff: float = 0.5, tau: float = 0.1, tau_m: float = 0.07) -> torch.Tensor:
    """SCE loss for L2-normalised student (B, D), teacher (B, D) and queue (K, D) embeddings."""
    batch = len(student)
    pos_student = (student * teacher).sum(dim=1, keepdim=True)
    logits_student = torch.cat([pos_student, student @ queue.t()], dim=1) / tau
    logits_teacher = torch.cat([torch.full((batch, 1), float("-inf"), device=student.device), teacher @ queue.t()], dim=1) / tau_m
    s = F.softmax(logits_teacher, dim=1)  # 0 at the positive
    onehot = torch.zeros_like(s)
    onehot[:, 0] = 1.0
    target = coeff * onehot + (1 - coeff) * s
    return -(target * F.log_softmax(logits_student, dim=1)).sum(dim=1).mean()


class SCE(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, temperature: float = 0.1, tau_m: float = 0.07, coeff: float = 0.5, queue_size: int = 4096, output_dim: int = 128, momentum: float = 0.99):
        super().__init__()
        self.backbone = backbone
        self.projection = MoCoProjectionHead(feature_dim, feature_dim, output_dim)
        self.prediction = BYOLPredictionHead(output_dim, feature_dim, output_dim)
        self.backbone_momentum = frozen_copy(backbone)
        self.projection_momentum = frozen_copy(self.projection)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, output_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.temperature, self.tau_m, self.coeff, self.momentum = temperature, tau_m, coeff, momentum

    def on_step_start(self, step: int, total_steps: int) -> None:
        m = ema_momentum(step, total_steps, self.momentum)
        ema_update([(self.backbone, self.backbone_momentum), (self.projection, self.projection_momentum)], m)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        n, size = len(keys), len(self.queue)
        ptr = int(self.queue_ptr)
        idx = (torch.arange(n, device=keys.device) + ptr) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + n) % size)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x0, x1 = views[0], views[1]
        p0 = F.normalize(self.prediction(self.projection(self.backbone(x0))), dim=1)
        p1 = F.normalize(self.prediction(self.projection(self.backbone(x1))), dim=1)
        with torch.no_grad():
            k0 = F.normalize(self.projection_momentum(self.backbone_momentum(x0)), dim=1)
            k1 = F.normalize(self.projection_momentum(self.backbone_momentum(x1)), dim=1)
        queue = self.queue.clone().detach()
        loss = 0.5 * (
            sce_loss(p0, k1, queue, self.coeff, self.temperature, self.tau_m)
            + sce_loss(p1, k0, queue, self.coeff, self.temperature, self.tau_m)
        )
        self._enqueue(torch.cat([k0, k1]))
        return loss
