"""``frozen``: not a pretraining method but a frozen encoder evaluated as the trained trials are
(``selfsup.frozen``), a reference row beside them. Its settings name the encoder and its weights;
the encoders themselves, their features and inputs are in ``selfsup.encoders``.

A sweep file names encoders in its ``encoders`` section (``model``, ``weights``, ``download``,
``input_size``) and puts them in the grid with ``method: [frozen]`` and ``encoder: [...]``; the plan
copies the entry's values into these settings, so every trial carries them (and MLflow shows them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True)
class FrozenSettings:
    encoder: str = ""
    """The ``encoders`` entry of the sweep file (its name)."""
    model: str = ""
    """The encoder (``selfsup.encoders.ENCODERS``: sam_vit_b, dinov2_vitb14, clip_vitb16, resnet50, ...)."""
    weights: str = "random"
    """A weights file, ``cache`` (timm's / torch hub's cache) or ``random`` (tests; marked in reports)."""
    download: bool = False
    """``weights: cache`` may download into the cache (off: a missing file stops the plan)."""
    input_size: Annotated[int, Field(ge=8)] | None = None
    """None: the encoder's own input size (``selfsup.encoders``); a number: that size instead."""


FROM_SECTION = ("model", "weights", "download", "input_size")
"""Settings the plan copies from the sweep file's ``encoders`` entry (not written in grid or train)."""

PRESETS = {"lightly": FrozenSettings(), "paper": FrozenSettings()}
"""Nothing to tune: both presets are the same."""
