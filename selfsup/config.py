"""Settings of one pretraining run, with the SAMCLR paper's values as defaults (Sec. 4.1); the
method's own hyperparameters come from its preset (``selfsup.methods``).

Plain frozen dataclasses, the one place where each setting, its default and its valid range are
written. The ranges are ``Annotated`` pydantic constraints: the orchestrator validates sweep files
against these very classes; a notebook user builds them directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from masking.regions import PAPER_C
from selfsup.methods import method_spec
from selfsup.methods.settings import MethodSettings

_STRICT = ConfigDict(extra="forbid")
Positive = Annotated[float, Field(gt=0)]


@dataclass(frozen=True)
class TrainConfig:
    __pydantic_config__ = _STRICT

    method: str = "simclr"
    preset: Literal["lightly", "paper"] = "lightly"
    """Where the method's hyperparameters come from: ``lightly`` (lightly's ImageNette benchmark, which
    the SAMCLR paper says its baselines used) or ``paper`` (the method's own paper). See each method's
    ``PRESETS`` in ``selfsup/methods/``."""
    method_params: dict[str, Any] = field(default_factory=dict)
    """Overrides of single method settings (``temperature``, ``base_lr``, ``queue_size``, ...; the
    method's settings dataclass names them). ``resolved()`` fills in every setting of the method."""
    sampling: Literal["random", "regions"] | None = None
    """``random`` or ``regions``; None takes the method's default (``samclr``: regions)."""
    c: Annotated[float, Field(ge=1)] = PAPER_C
    """Region-box enlargement (paper: 1.3); ignored by ``random`` sampling."""
    epochs: Annotated[int, Field(ge=1)] = 100
    batch_size: Annotated[int, Field(ge=2)] = 256
    image_size: Annotated[int, Field(ge=8)] = 128
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
    PIL (lightly's transforms), which bounds a fast GPU. ``gpu``: every image is decoded
    and resized once into an in-memory uint8 cache (see ``cache_scale``), workers only draw crop
    boxes (the same sampler, so region crops stay inside the enlarged region), and crop + resize,
    flip, colour jitter, grayscale, blur, solarisation and normalisation run in batches on the
    training device with the same distributions (``selfsup.data.device_views``). Works on a CPU device too."""
    cache_scale: Annotated[float, Field(ge=1)] = 1.5
    """``input: gpu``: the cache keeps each image with its short side at ``cache_scale`` x the largest
    view size (1.5 x 128 = 192 px; never upscaled). Crops smaller than the cache resolution are
    enlarged from it, so raise it when region boxes are small next to the image (Cityscapes'
    2048 x 1024 frames): memory grows with its square (ImageNette at 1.5: ~1.4 GB)."""
    compile: bool = False
    """``torch.compile`` the method module for training steps (the first steps are slower while it
    compiles; each view size compiles once). Off by default: it pays off on a GPU, rarely on a CPU."""

    def settings(self) -> MethodSettings:
        """The method's settings: its preset with ``method_params`` applied (ValueError naming a bad key)."""
        return method_spec(self.method).resolve(self.preset, self.method_params)

    def resolved(self) -> TrainConfig:
        """The same settings with every default filled in: the sampling, and every method setting."""
        spec = method_spec(self.method)
        return replace(self, sampling=self.sampling or spec.sampling, method_params=asdict(self.settings()))

    @property
    def lr(self) -> float:
        """The learning rate of this batch size: ``base_lr x batch_size / 256``."""
        return self.settings().base_lr * self.batch_size / 256


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
