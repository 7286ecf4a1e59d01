"""Settings of one pretraining run, with the SAMCLR paper's values as defaults (Sec. 4.1).

Plain dataclasses: the orchestrator validates sweep files with pydantic and builds these; a
notebook user builds them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from masking.regions import PAPER_C
from selfsup.methods import method_spec


@dataclass(frozen=True)
class TrainConfig:
    method: str = "simclr"
    sampling: str | None = None
    """``random`` or ``regions``; None takes the method's default (``samclr``: regions)."""
    temperature: float | None = None
    """None takes the method's default (SimCLR: lightly's 0.5; SAMCLR: the paper's 0.07)."""
    c: float = PAPER_C
    epochs: int = 100
    batch_size: int = 256
    image_size: int = 128
    lr: float | None = None
    """None means the reference code's 0.06 x batch_size / 256."""
    min_scale: float = 0.08
    """Smallest crop area as a fraction of the crop domain (lightly's SimCLR default 0.08)."""
    cj_strength: float = 1.0
    """Colour-jitter strength (lightly: 1.0; it recommends 0.5 for small images such as CIFAR)."""
    blur_prob: float = 0.5
    """Probability of Gaussian blur, sigma in [0.1, 2] px (lightly's SimCLR default 0.5; these
    sigmas are meant for 224 px views and erase shapes at 32 px: use 0 there)."""
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    backbone_width: int = 64
    stem: str = "imagenet"
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    """Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler); ignored on CPU."""

    def resolved(self) -> TrainConfig:
        """The same settings with every None replaced by its default."""
        spec = method_spec(self.method)
        return replace(
            self,
            sampling=self.sampling or spec.sampling,
            temperature=self.temperature if self.temperature is not None else spec.temperature,
            lr=self.lr if self.lr is not None else 0.06 * self.batch_size / 256,
        )


@dataclass(frozen=True)
class EvalConfig:
    every: int = 10
    """KNN every this many epochs, and always after the last epoch (paper: every 10 epochs)."""
    knn_k: int = 200
    knn_t: float = 0.1
    image_size: int | None = None
    """Evaluation resolution; None uses the training view size (the reference code: 128 px)."""
    batch_size: int = 256
    linear_epochs: int = 90
    linear_lr: float = 0.1
    linear_batch_size: int = 256
    linear_augment: bool = False
    """True: random-resized crop + flip through the frozen backbone every epoch (reference code);
    False: one pass of centre-crop features, then the linear layer on them (much faster)."""
