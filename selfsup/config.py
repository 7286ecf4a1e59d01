"""Settings of one pretraining run, with the SAMCLR paper's values as defaults (Sec. 4.1); the
method's own hyperparameters come from its preset (``selfsup.methods``).

Plain frozen dataclasses, the one place where each setting, its default and its valid range are
written. The ranges are ``Annotated`` pydantic constraints: the orchestrator validates sweep files
against these very classes; a notebook user builds them directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from collections.abc import Mapping
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


def flat_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A TrainConfig as one flat dict (``dataclasses.asdict`` of it, or a checkpoint's copy): its
    fields, with ``method_params`` spread out under their own names (temperature, queue_size, ...) and
    lists as tuples (a copy that went through JSON compares equal). What MLflow shows as a trial's
    params (``orchestrator.plan.Trial.params``) and what a checkpoint's settings are compared on
    (``selfsup.training``). ValueError when a method setting has the name of a TrainConfig field (it
    would hide one of the two)."""
    out = {k: v for k, v in config.items() if k != "method_params"}
    for key, value in (config.get("method_params") or {}).items():
        if key in out:
            raise ValueError(f"method setting {key!r} has the name of a TrainConfig field; rename it")
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


@dataclass(frozen=True)
class ProbeProtocol:
    """How a linear probe is trained on a frozen backbone: SGD, momentum 0.9, cosine learning rate
    per step from ``base_lr x batch_size / 256`` to 0, no warm-up."""

    augment: bool
    """True: random-resized crop + flip of the train images through the backbone every epoch;
    False: the cached centre-crop features of the train split, every epoch the same."""
    batch_size: int
    base_lr: float
    weight_decay: float
    batchnorm: bool
    """A non-affine BatchNorm1d standardising the features before the linear layer."""
    drop_last: bool
    """Drop the last incomplete train batch (kept when the split is smaller than one batch)."""


PROBE_PROTOCOLS: dict[str, ProbeProtocol] = {
    "fast": ProbeProtocol(augment=False, batch_size=256, base_lr=0.1, weight_decay=0.0, batchnorm=True, drop_last=False),
    "reference": ProbeProtocol(augment=True, batch_size=128, base_lr=0.1, weight_decay=0.0, batchnorm=False, drop_last=True),
}
"""``fast``: ours, for miniatures and CPUs. ``reference``: the SAMCLR reference code (benji2264/s3same,
``callbacks.py``: ``LinearProbingCallback``, batch 128, 90 epochs, ``RandomResizedCrop`` + flip,
``drop_last``) training lightly's ``LinearClassifier`` (lightly 1.6 ``linear_classifier.py``: a bare
``Linear``, SGD lr 0.1 x bs/256, momentum 0.9, weight decay 0, cosine per step)."""


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
    """Epochs of the linear probe (reference code: 90); 0: no probe at all, no linear metric logged."""
    linear_protocol: Literal["fast", "reference"] = "fast"
    """How the linear probe trains (``PROBE_PROTOCOLS``). ``fast`` (ours): one pass of centre-crop
    features, batch-normalised, then a linear layer on them; minutes on a CPU. ``reference``: the
    SAMCLR reference code's probe (lightly's ``LinearClassifier``): random-resized crop + flip
    through the frozen backbone every epoch, batch 128, a bare linear layer; 90 x the backbone's
    forward passes over the train split."""
    linear_lr: Positive | None = None
    """Base learning rate of the probe (x batch / 256); None: the protocol's."""
    linear_batch_size: Annotated[int, Field(ge=1)] | None = None
    """Batch size of the probe; None: the protocol's."""
    at_start: bool = False
    """Also evaluate (KNN and linear) the untrained network, as epoch 0: the floor that pretraining
    must beat (random-weight features are far above chance on small images)."""

    def probe(self) -> ProbeProtocol:
        """The linear probe's protocol with ``linear_lr`` and ``linear_batch_size`` applied."""
        protocol = PROBE_PROTOCOLS[self.linear_protocol]
        return replace(
            protocol,
            base_lr=self.linear_lr or protocol.base_lr,
            batch_size=self.linear_batch_size or protocol.batch_size,
        )
