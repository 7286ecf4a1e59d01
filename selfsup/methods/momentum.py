"""Momentum (EMA) teachers shared by MoCo, BYOL, DINO and SCE.

The teacher is a frozen copy of the student's modules, moved towards the student after every
step with a momentum that follows a cosine schedule from ``start`` to 1 (BYOL, Grill et al. 2020,
Sec. 3.2; lightly's ``cosine_schedule``). lightly's ``update_momentum`` moves parameters only, as
in the papers; BN buffers of the teacher follow its own forward passes.
"""

from __future__ import annotations

import copy

import torch.nn as nn
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule


def frozen_copy(module: nn.Module) -> nn.Module:
    """A teacher copy of ``module`` (for modules that can be deep-copied; DINO's head cannot)."""
    teacher = copy.deepcopy(module)
    deactivate_requires_grad(teacher)
    return teacher


def ema_momentum(step: int, total_steps: int, start: float) -> float:
    """Teacher momentum at ``step``: cosine from ``start`` to 1 over the run."""
    return float(cosine_schedule(step, max(total_steps, 1), start, 1.0))


def ema_update(pairs: list[tuple[nn.Module, nn.Module]], momentum: float) -> None:
    """Move each teacher (second) towards its student (first)."""
    for student, teacher in pairs:
        update_momentum(student, teacher, momentum)
