"""What every method's settings share: the optimiser and the photometric overrides.

Each method keeps its own hyperparameters in a frozen dataclass that extends ``MethodSettings``
(temperature, head sizes, EMA, queue, prototypes, crops), with two presets:

- ``lightly``: the values of lightly's ImageNette benchmark (ResNet18, 128 px;
  ``docs/source/getting_started/benchmarks/imagenette_benchmark.py`` in lightly-ai/lightly), which the
  SAMCLR paper says its baselines used ("Lightly's implementations with default optimizers and
  hyperparameters"); the default;
- ``paper``: the method's own paper (and its official code where the paper is silent).

A sweep file overrides single values (``train: {temperature: 0.2}``) or makes them grid axes
(``grid: {temperature: [0.1, 0.5]}``); a value a method does not have is ignored for that method.
The ranges are ``Annotated`` pydantic constraints, checked when a sweep is planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

Positive = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]
EmaStart = Annotated[float, Field(ge=0, le=1)]
Dim = Annotated[int, Field(ge=1)]
Scale = tuple[Fraction, Fraction]
JitterStrength = Annotated[float, Field(ge=0, le=2.5)]


@dataclass(frozen=True)
class MethodSettings:
    optimizer: Literal["sgd", "adam", "lars"] = "sgd"
    """``sgd``: torch's SGD; ``adam``: torch's Adam; ``lars``: lightly's ``LARS`` (BYOL, SimCLR, SwAV papers)."""
    base_lr: Positive = 0.06
    """Learning rate at batch 256; a run uses ``base_lr x batch_size / 256`` (linear scaling, as lightly's
    benchmarks and the SAMCLR reference code: 0.06 x batch / 256), warm-up then cosine."""
    weight_decay: Annotated[float, Field(ge=0)] = 5e-4
    sgd_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """Momentum of SGD and LARS (ignored by Adam)."""
    cj_strength: JitterStrength = 0.5
    """Colour-jitter strength applied to the method's own jitter (lightly's ``cj_strength``; hue jitter
    0.2 x strength must stay <= 0.5, torchvision's limit). lightly's benchmark uses 0.5 for 128 px views."""
    blur_prob: Probability | None = None
    """None: the method's own Gaussian-blur probability per view (SimCLR 0.5; BYOL and DINO 1.0 / 0.1 / 0.5);
    a number: that probability on every view (0 for small views: sigma 0.1-2 px erases a 32 px view;
    lightly's CIFAR-10 benchmark turns blur off)."""


EmaSchedule = Literal["constant", "cosine"]
"""Teacher momentum: ``constant`` (lightly's benchmarks) or ``cosine`` from its start to 1 (BYOL, DINO)."""
