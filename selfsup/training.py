"""The pretraining loop: plain PyTorch, one class holding every piece of state.

Habits from DINO's ``main_dino.py``: the learning rate is precomputed per step (warm-up then
cosine, so no scheduler state), a NaN guard stops the run with a clear error, and one pair of
``state_dict``/``load_state_dict`` saves and restores everything. Each epoch reseeds torch from
(seed, epoch) and the DataLoader gets its own generator from the same pair, so an epoch is a pure
function of the state at its start: a run resumed from a checkpoint ends with exactly the weights
of an uninterrupted one, with or without DataLoader workers.

Views are made on the CPU (DataLoader workers, PIL: ``selfsup.views.ViewSampler``) or, with
``input: gpu``, from an in-memory cache of decoded images on the training device in batches
(``selfsup.data.device_views``; workers draw only the crop boxes, ``masking.crops.CropSampler``),
whose random parameters come from a generator seeded from (seed, epoch) too.

Optimiser: the method's preset (``selfsup.methods``; lightly's benchmark: SGD, lr 0.06 x batch / 256,
momentum 0.9, weight decay 5e-4, as the SAMCLR reference code), linear warm-up then cosine per step.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch

from masking.crops import CropSampler
from selfsup.backbone import resnet18
from selfsup.config import EvalConfig, TrainConfig, flat_settings
from selfsup.data.cached_crops import CachedCrops, device_batch
from selfsup.data.device_views import DeviceViews
from selfsup.data.evalsets import EvalSet
from selfsup.data.image_cache import DeviceImages, ImageCache
from samdata.image_files import list_images
from samdata.storage import location
from selfsup.data.pretrain_images import PretrainImages
from selfsup.evaluation import extract, knn_top1, linear_metrics
from selfsup.methods import method_spec
from selfsup.methods.settings import MethodSettings
from selfsup.views import ViewSampler

Metrics = dict[str, float]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: the run stops instead of training on garbage."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full...); the previous one was left untouched."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here")
    return device


def lr_schedule(base_lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: int = 0) -> np.ndarray:
    """Learning rate at every step: linear warm-up, then cosine decay to zero."""
    warmup = warmup_epochs * steps_per_epoch
    total = epochs * steps_per_epoch
    ramp = base_lr * np.arange(1, warmup + 1) / max(warmup, 1)
    t = np.arange(total - warmup) / max(total - warmup, 1)
    return np.concatenate([ramp, base_lr * 0.5 * (1 + np.cos(np.pi * t))])


def make_optimizer(model: torch.nn.Module, settings: MethodSettings, lr: float) -> torch.optim.Optimizer:
    """The method's optimiser over the parameters that train (teachers are frozen): torch's SGD or
    Adam, or lightly's ``LARS`` (as lightly's benchmarks use it, biases and norms included)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=settings.weight_decay)
    if settings.optimizer == "lars":
        from lightly.utils.lars import LARS

        return LARS(params, lr=lr, momentum=settings.sgd_momentum, weight_decay=settings.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=settings.sgd_momentum, weight_decay=settings.weight_decay)


def save_checkpoint(state: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename: a crash mid-write
    leaves the previous checkpoint intact; a failed write is one ``CheckpointWriteError``."""
    path = Path(path)
    try:
        location(path).write(lambda stream: torch.save(state, stream))
    except (OSError, RuntimeError) as err:  # disk full, quota, file-size limit: torch may wrap the OSError
        intact = "the previous checkpoint is intact" if path.exists() else "there is no earlier checkpoint"
        raise CheckpointWriteError(f"could not write checkpoint {path}: {err}; {intact}") from err


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def cache_short_side(train: TrainConfig) -> int:
    """``input: gpu``: the short side (px) of the cached images, ``cache_scale`` x the method's largest
    view (``TrainConfig.cache_scale``), which decides the cache as much as the image list does."""
    cfg = train.resolved()
    crops = method_spec(cfg.method).crops(cfg.settings(), cfg.image_size)
    return math.ceil(cfg.cache_scale * max(crop.size for crop in crops))


class Pretraining:
    """One pretraining run: model, optimiser, data, evaluation and progress.

    ``boxes_of(relative_path)`` gives an image's region boxes (a ``RegionStore``'s ``boxes``);
    it is needed when the resolved sampling is ``regions``.

    ``image_cache`` (``input: gpu``): a cache built already (``ImageCache.build(data_root, paths,
    cache_short_side(train))``, e.g. shared by the runs on one machine), used instead of decoding
    the images again and never written to (it may be read-only). One built from another folder,
    image list or short side is not used: a warning says why, and the run builds its own.
    """

    def __init__(
        self,
        train: TrainConfig,
        evaluation: EvalConfig,
        data_root: str | Path,
        eval_sets: Sequence[EvalSet] = (),
        boxes_of: Callable[[str], np.ndarray] | None = None,
        paths: Sequence[str] | None = None,
        image_cache: ImageCache | None = None,
    ):
        self.cfg = train.resolved()
        self.eval_cfg = evaluation
        self.eval_sets = list(eval_sets)
        if self.cfg.sampling == "regions" and boxes_of is None:
            raise ValueError(f"method {self.cfg.method!r} samples regions: give boxes_of (a region store)")
        self.device = resolve_device(self.cfg.device)
        torch.manual_seed(self.cfg.seed)
        spec = method_spec(self.cfg.method)
        if spec.build is None:
            raise ValueError(f"method {self.cfg.method!r} does not train: selfsup.frozen.FrozenEvaluation evaluates it")
        self.settings = self.cfg.settings()
        backbone, feature_dim = resnet18(self.cfg.backbone_width, self.cfg.stem)
        self.model = spec.build(backbone, feature_dim, self.settings, self.cfg.epochs).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        crops = spec.crops(self.settings, self.cfg.image_size)  # each with the method's own augmentations
        boxes_of = boxes_of if self.cfg.sampling == "regions" else None
        self.device_views: DeviceViews | None = None
        self.used_given_cache = False
        """Whether ``image_cache`` was used (else the run decoded its own, or has none: ``input: cpu``)."""
        if self.cfg.input == "gpu":  # decode once; per step only crop boxes come from the workers
            paths = list(paths) if paths is not None else list_images(data_root)
            short_side = cache_short_side(self.cfg)
            why = image_cache.mismatch(data_root, paths, short_side) if image_cache is not None else None
            if why is not None:
                warnings.warn(f"the image cache given is not this run's ({why}): building its own", stacklevel=2)
            self.used_given_cache = image_cache is not None and why is None
            if not self.used_given_cache:
                image_cache = ImageCache.build(data_root, paths, short_side)  # on every core, before workers start
            self.device_images = DeviceImages(image_cache, self.device)  # one copy to a GPU (none to a CPU); batches gathered there
            # the workers' items need only the layout: the pixels stay with device_images
            cache = replace(image_cache, pixels=np.empty(0, np.uint8))
            del image_cache
            self.dataset = CachedCrops(cache, CropSampler(crops, self.cfg.sampling, self.cfg.c), boxes_of)
            self.device_views = DeviceViews(crops)
        else:
            sampler = ViewSampler(crops, self.cfg.sampling, self.cfg.c)
            self.dataset = PretrainImages(data_root, sampler, boxes_of, paths)
        self.steps_per_epoch = len(self.dataset) // self.cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {self.cfg.batch_size} is larger than the pretraining set ({len(self.dataset)} images)")
        self.lr = lr_schedule(self.cfg.lr, self.cfg.epochs, self.steps_per_epoch, self.cfg.warmup_epochs)
        self.optimizer = make_optimizer(self.model, self.settings, self.cfg.lr)
        use_amp = self.cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.amp = use_amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp and self.amp_dtype == torch.float16)
        self.step_model = torch.compile(self.model) if self.cfg.compile else self.model  # same parameters
        self.epoch = 0
        self.history: list[Metrics] = []

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        # a setting added since the checkpoint was written had its default then
        saved = flat_settings({**{f.name: f.default for f in fields(TrainConfig)}, **state["config"]})
        now = flat_settings(asdict(self.cfg))
        if saved != now:
            changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
            raise ValueError(f"checkpoint was made with other settings ({', '.join(changed)}); refusing to resume")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.history = list(state["history"])

    @property
    def trained_backbone(self) -> torch.nn.Module:
        """The backbone this run trains (what ``selfsup.backbone.export_backbone`` hands on)."""
        return self.model.backbone

    def save(self, path: str | Path) -> None:
        """Write a checkpoint atomically: a crash mid-write leaves the previous one intact."""
        save_checkpoint(self.state_dict(), path)

    def restore(self, path: str | Path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))

    # -- training ----------------------------------------------------------------------------
    def train_epoch(self) -> Metrics:
        seed = _epoch_seed(self.cfg.seed, self.epoch)
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.cfg.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.cfg.workers,
            generator=torch.Generator().manual_seed(seed),
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        augment = torch.Generator().manual_seed(_epoch_seed(seed, 1))  # input: gpu's photometric draws
        self.model.train()
        losses = []
        images = 0
        start = time.perf_counter()
        on_step_start = getattr(self.model, "on_step_start", None)
        on_after_backward = getattr(self.model, "on_after_backward", None)
        for i, (views, indices) in enumerate(loader):
            step = self.epoch * self.steps_per_epoch + i
            for group in self.optimizer.param_groups:
                group["lr"] = float(self.lr[step])
            if on_step_start is not None:
                on_step_start(step, len(self.lr))
            if self.device_views is not None:  # views: crop boxes; the pixels are on the device already
                views = self.device_views(*device_batch(self.device_images, views, indices), augment)
            else:
                views = [v.to(self.device, non_blocking=True) for v in views]
            if self.device.type == "cuda":
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                loss = self.step_model(views)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at epoch {self.epoch + 1}, step {i + 1} "
                    f"(method {self.cfg.method}, lr {self.lr[step]:.4g}, temperature {getattr(self.settings, 'temperature', None)}): "
                    "lower the learning rate (base_lr) or raise the temperature"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if on_after_backward is not None:
                on_after_backward(step, len(self.lr))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            losses.append(loss.detach())
            images += len(views[0])
        elapsed = time.perf_counter() - start
        return {"train/loss": torch.stack(losses).mean().item(), "images_per_s": images / elapsed, "lr": float(self.lr[step])}

    def evaluate(self, linear: bool) -> Metrics:
        """KNN top-1 on every eval set, and the linear probe too when ``linear``."""
        metrics: Metrics = {}
        size = self.eval_cfg.image_size or self.cfg.image_size
        backbone = self.model.backbone
        for eval_set in self.eval_sets:
            features = extract(backbone, eval_set, self.eval_cfg, size, self.device, self.cfg.workers)
            metrics[f"knn_top1/{eval_set.name}"] = knn_top1(features, eval_set.num_classes, self.eval_cfg.knn_k, self.eval_cfg.knn_t)
            if linear:
                metrics.update(linear_metrics(
                    backbone, features, eval_set, self.eval_cfg, size, self.device, self.cfg.workers, self.cfg.seed
                ))
        return metrics

    def fit(self, on_epoch: Callable[[Metrics, Pretraining], None] | None = None) -> list[Metrics]:
        """Train to ``epochs``, from wherever the run stands; ``on_epoch(metrics, self)`` after each
        epoch (the place to save a checkpoint or report to a tracker). With ``at_start``, the untrained
        network is evaluated first, as epoch 0."""
        if self.eval_cfg.at_start and self.epoch == 0 and not self.history:
            self.history.append({"epoch": 0, **self.evaluate(linear=True)})
            if on_epoch is not None:
                on_epoch(self.history[-1], self)
        while self.epoch < self.cfg.epochs:
            metrics: Metrics = {"epoch": self.epoch + 1, **self.train_epoch()}
            self.epoch += 1
            last = self.epoch == self.cfg.epochs
            if last or self.epoch % self.eval_cfg.every == 0:
                metrics.update(self.evaluate(linear=last))
            self.history.append(metrics)
            if on_epoch is not None:
                on_epoch(metrics, self)
        return self.history
