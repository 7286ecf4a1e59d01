"""Momentum (EMA) teachers and key queues shared by MoCo, BYOL, DINO and SCE.

The teacher is a frozen copy of the student's modules, moved towards the student before every
step. Its momentum is ``constant`` (lightly's benchmarks: 0.99) or follows a ``cosine`` schedule
from its start to 1 (BYOL, Grill et al. 2020, Sec. 3.2; DINO; lightly's ``cosine_schedule``).
lightly's ``update_momentum`` moves parameters only, as in the papers; BN buffers of the teacher
follow its own forward passes.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule


def frozen_copy(module: nn.Module) -> nn.Module:
    """A teacher copy of ``module`` (for modules that can be deep-copied; DINO's head cannot)."""
    teacher = copy.deepcopy(module)
    deactivate_requires_grad(teacher)
    return teacher


def ema_momentum(step: int, total_steps: int, start: float, schedule: str = "cosine") -> float:
    """Teacher momentum at ``step``: ``start`` throughout (``constant``), or cosine from ``start`` to 1."""
    if schedule == "constant":
        return float(start)
    if schedule != "cosine":
        raise ValueError(f"unknown EMA schedule {schedule!r}; known: constant, cosine")
    return float(cosine_schedule(step, max(total_steps, 1), start, 1.0))


def ema_update(pairs: list[tuple[nn.Module, nn.Module]], momentum: float) -> None:
    """Move each teacher (second) towards its student (first)."""
    for student, teacher in pairs:
        update_momentum(student, teacher, momentum)


class MomentumTeacher(nn.Module):
    """A student ``backbone`` + ``projection`` and its EMA teacher of both (MoCo, BYOL, SCE; lightly's
    benchmark models name them ``backbone_momentum`` and ``projection_momentum``, as here). The
    settings give ``ema`` (the start) and ``ema_schedule``."""

    def __init__(self, backbone: nn.Module, projection: nn.Module, settings) -> None:
        super().__init__()
        self.settings = settings
        self.backbone = backbone
        self.projection = projection
        self.backbone_momentum = frozen_copy(backbone)
        self.projection_momentum = frozen_copy(projection)

    def on_step_start(self, step: int, total_steps: int) -> None:
        m = ema_momentum(step, total_steps, self.settings.ema, self.settings.ema_schedule)
        ema_update([(self.backbone, self.backbone_momentum), (self.projection, self.projection_momentum)], m)

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's projection of ``x`` (no gradient)."""
        return self.projection_momentum(self.backbone_momentum(x))


class KeyQueue(nn.Module):
    """A first-in first-out queue of the last ``size`` L2-normalised teacher keys (MoCo, He et al.
    2020, Sec. 3.1), initialised with random unit vectors as in MoCo's code and lightly's
    ``MemoryBankModule``. Buffers, so the queue is saved and restored with the model."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Replace the oldest ``len(keys)`` entries with ``keys``."""
        n, size = len(keys), len(self.keys)
        ptr = int(self.ptr)
        idx = (torch.arange(n, device=keys.device) + ptr) % size
        self.keys[idx] = keys.to(self.keys.dtype)
        self.ptr.fill_((ptr + n) % size)

    def snapshot(self) -> torch.Tensor:
        """The queue as it is now, detached from later pushes."""
        return self.keys.clone().detach()
