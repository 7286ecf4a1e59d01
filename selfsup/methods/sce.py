"""SCE, Similarity Contrastive Estimation (Denize et al., WACV 2023).

A momentum teacher gives, for each image, a similarity distribution over the other images (the
queue); the student's target mixes the one-hot of its positive with that distribution:

    w_i  = lambda * onehot(positive) + (1 - lambda) * s_i,
    s_ik = exp(z'_i . z'_k / tau_m) / sum_{j != i} exp(z'_i . z'_j / tau_m)  for k != i, s_ii = 0,
    p_ik = exp(z_i . z'_k / tau) / sum_j exp(z_i . z'_j / tau),
    L    = - mean_i sum_k w_ik log p_ik,

where z is the student's prediction and z' the teacher's projection, both L2-normalised, and the
"others" are the queue of past teacher embeddings. MoCo-style projector and a predictor on the
student; symmetrised over the two views, both terms against the queue before the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.models.modules import BYOLPredictionHead, MoCoProjectionHead

from selfsup.methods.momentum import KeyQueue, MomentumTeacher
from selfsup.methods.settings import Dim, EmaSchedule, EmaStart, Fraction, MethodSettings, Positive, Probability


@dataclass(frozen=True)
class SCESettings(MethodSettings):
    temperature: Positive = 0.1
    tau_m: Positive = 0.07
    coeff: Probability = 0.5
    """lambda: the weight of the one-hot positive in the target."""
    queue_size: Dim = 4096
    output_dim: Dim = 128
    ema: EmaStart = 0.99
    ema_schedule: EmaSchedule = "cosine"
    min_scale: Fraction = 0.08


# lightly has no SCE: both presets are the paper's values (Denize et al. 2023, Sec. 4): lambda 0.5, tau 0.1,
# tau_m 0.07, teacher momentum 0.99 -> 1 (cosine), a queue of 4096 (its small-data setting), MoCo-style
# projector -> 128 and a predictor, with the SGD recipe of lightly's benchmark for the optimiser.
PRESETS = {"lightly": SCESettings(), "paper": SCESettings()}


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


class SCE(MomentumTeacher):
    def __init__(self, backbone: nn.Module, feature_dim: int, settings: SCESettings = SCESettings()):
        s = settings
        super().__init__(backbone, MoCoProjectionHead(feature_dim, feature_dim, s.output_dim), settings)
        self.prediction = BYOLPredictionHead(s.output_dim, feature_dim, s.output_dim)
        self.queue = KeyQueue(s.queue_size, s.output_dim)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x0, x1 = views[0], views[1]
        s = self.settings
        p0 = F.normalize(self.prediction(self.projection(self.backbone(x0))), dim=1)
        p1 = F.normalize(self.prediction(self.projection(self.backbone(x1))), dim=1)
        k0, k1 = F.normalize(self.teacher(x0), dim=1), F.normalize(self.teacher(x1), dim=1)
        queue = self.queue.snapshot()
        loss = 0.5 * (sce_loss(p0, k1, queue, s.coeff, s.temperature, s.tau_m) + sce_loss(p1, k0, queue, s.coeff, s.temperature, s.tau_m))
        self.queue.push(torch.cat([k0, k1]))
        return loss
