"""Settings of one pretraining run, with the SAMCLR paper's values as defaults (Sec. 4.1).

Plain frozen dataclasses, the one place where each setting, its default and its valid range are
written. The ranges are ``Annotated`` pydantic constraints: the orchestrator validates sweep files
against these very classes; a notebook user builds them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from masking.regions import PAPER_C
from selfsup.methods import method_spec

_STRICT = ConfigDict(extra="forbid")
Positive = Annotated[float, Field(gt=0)]


@dataclass(frozen=True)
class TrainConfig:
    __pydantic_config__ = _STRICT

    method: str = "simclr"
    sampling: Literal["random", "regions"] | None = None
    """``random`` or ``regions``; None takes the method's default (``samclr``: regions)."""
    temperature: Positive | None = None
    """None takes the method's default (SimCLR: lightly's 0.5; SAMCLR: the paper's 0.07)."""
    c: Annotated[float, Field(ge=1)] = PAPER_C
    """Region-box enlargement (paper: 1.3); ignored by ``random`` sampling."""
    epochs: Annotated[int, Field(ge=1)] = 100
    batch_size: Annotated[int, Field(ge=2)] = 256
    image_size: Annotated[int, Field(ge=8)] = 128
    lr: Positive | None = None
    """None means the reference code's 0.06 x batch_size / 256."""
    min_scale: Annotated[float, Field(gt=0, le=1)] = 0.08
    """Smallest crop area as a fraction of the crop domain (lightly's SimCLR default 0.08)."""
    cj_strength: Annotated[float, Field(ge=0)] = 1.0
    """Colour-jitter strength (lightly: 1.0; it recommends 0.5 for small images such as CIFAR)."""
    blur_prob: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Probability of Gaussian blur, sigma in [0.1, 2] px (lightly's SimCLR default 0.5; these
    sigmas are meant for 224 px views and erase shapes at 32-64 px: use 0 there)."""
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[float, Field(ge=0)] = 5e-4
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    backbone_width: Annotated[int, Field(ge=8, multiple_of=8)] = 64
    stem: Literal["imagenet", "cifar"] = "imagenet"
    workers: Annotated[int, Field(ge=0)] = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    """Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler); ignored on CPU."""
    input: Literal["cpu", "gpu"] = "cpu"
    """Where views are made. ``cpu``: DataLoader workers decode, crop and augment every view with
    PIL (lightly's ``SimCLRTransform``), which bounds a fast GPU. ``gpu``: every image is decoded
    and resized once into an in-memory uint8 cache (see ``cache_scale``), workers only draw crop
    boxes (the same sampler, so region crops stay inside the enlarged region), and crop + resize,
    flip, colour jitter, grayscale, blur and normalisation run in batches on the training device
    with the same distributions (``selfsup.data.device_views``). Works on a CPU device too."""
    cache_scale: Annotated[float, Field(ge=1)] = 1.5
    """``input: gpu``: the cache keeps each image with its short side at ``cache_scale`` x the largest
    view size (1.5 x 128 = 192 px; never upscaled). Crops smaller than the cache resolution are
    enlarged from it, so raise it when region boxes are small next to the image (Cityscapes'
    2048 x 1024 frames): memory grows with its square (ImageNette at 1.5: ~1.4 GB)."""
    compile: bool = False
    """``torch.compile`` the method module for training steps (the first steps are slower while it
    compiles; each view size compiles once). Off by default: it pays off on a GPU, rarely on a CPU."""

    def resolved(self) -> TrainConfig:
        """The same settings with every None replaced by its default."""
        spec = method_spec(self.method)
        temperature = self.temperature if self.temperature is not None else spec.temperature
        return replace(
            self,
            sampling=self.sampling or spec.sampling,
            temperature=None if spec.temperature is None else temperature,  # BYOL, DINO: none
            lr=self.lr if self.lr is not None else 0.06 * self.batch_size / 256,
        )


@dataclass(frozen=True)
class EvalConfig:
    __pydantic_config__ = _STRICT

    every: Annotated[int, Field(ge=1)] = 10
    """KNN every this many epochs, and always after the last epoch (paper: every 10 epochs)."""
    knn_k: Annotated[int, Field(ge=1)] = 200
    knn_t: Positive = 0.1
    image_size: Annotated[int, Field(ge=8)] | None = None
    """Evaluation resolution; None uses the training view size (the reference code: 128 px)."""
    batch_size: Annotated[int, Field(ge=1)] = 256
    linear_epochs: Annotated[int, Field(ge=0)] = 90
    linear_lr: Positive = 0.1
    linear_batch_size: Annotated[int, Field(ge=1)] = 256
    linear_augment: bool = False
    """True: random-resized crop + flip through the frozen backbone every epoch (reference code);
    False: one pass of centre-crop features, then the linear layer on them (much faster)."""
    at_start: bool = False
    """Also evaluate (KNN and linear) the untrained network, as epoch 0: the floor that pretraining
    must beat (random-weight features are far above chance on small images)."""
