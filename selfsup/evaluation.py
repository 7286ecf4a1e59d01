"""Evaluation of a frozen backbone: KNN top-1 and a linear probe (SAMCLR paper, Sec. 4.1).

KNN follows the reference code and lightly's benchmarks: cosine similarity on L2-normalised
backbone features (before the projection head), k = 200, temperature 0.1, lightly's
``knn_predict``. The linear probe trains a linear classifier on the frozen backbone, by one of two
protocols (``EvalConfig.linear_protocol``, ``selfsup.config.PROBE_PROTOCOLS``): ``fast``, ours, on
cached centre-crop features, or ``reference``, the SAMCLR reference code's (augmented images through
the backbone every epoch). Both report the last epoch's val top-1 and, beside it, the best epoch's,
which is selected on the val split itself (what the reference code and lightly's benchmarks report).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from selfsup.config import EvalConfig, ProbeProtocol
from selfsup.data.evalsets import EvalSet, Preprocessing


@dataclass(frozen=True)
class Features:
    """Backbone features (float32, CPU) and labels of an eval set's train and val splits."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def _loader(
    dataset: torch.utils.data.Dataset, batch_size: int, workers: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last and len(dataset) >= batch_size,  # type: ignore[arg-type]
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
    )


@torch.no_grad()
def embed(backbone: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    was_training = backbone.training
    backbone.eval()
    xs, ys = [], []
    for x, y in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            f = backbone(x.to(device, non_blocking=True))
        xs.append(f.float().cpu())
        ys.append(torch.as_tensor(y))
    backbone.train(was_training)
    return torch.cat(xs), torch.cat(ys)


def extract(
    backbone: nn.Module, eval_set: EvalSet, cfg: EvalConfig, size: int, device: torch.device, workers: int,
    preprocessing: Preprocessing | None = None,
) -> Features:
    """Features of both splits at ``size`` with ImageNet statistics, or by ``preprocessing`` when given
    (a frozen encoder's own input size and normalisation)."""
    transform = (preprocessing or Preprocessing(size)).eval()
    train = embed(backbone, _loader(eval_set.make("train", transform), cfg.batch_size, workers), device)
    val = embed(backbone, _loader(eval_set.make("val", transform), cfg.batch_size, workers), device)
    return Features(*train, *val)


def knn_top1(features: Features, num_classes: int, k: int = 200, t: float = 0.1, chunk: int = 1024) -> float:
    """Top-1 accuracy of a weighted KNN classifier (lightly's ``knn_predict``) on val features."""
    # imported here: lightly.utils.benchmarking imports pytorch_lightning, torchmetrics and matplotlib,
    # which training alone (e.g. bench/gpu_check.sh on a machine without them) does not need
    from lightly.utils.benchmarking import knn_predict

    bank = F.normalize(features.train_x, dim=1).t().contiguous()
    k = min(k, bank.shape[1])
    correct = 0
    for start in range(0, len(features.val_x), chunk):
        q = F.normalize(features.val_x[start : start + chunk], dim=1)
        pred = knn_predict(q, bank, features.train_y, num_classes, k, t)
        correct += (pred[:, 0] == features.val_y[start : start + chunk]).sum().item()
    return correct / len(features.val_x)


@dataclass(frozen=True)
class ProbeResult:
    """Val top-1 of a linear probe after each of its epochs."""

    per_epoch: tuple[float, ...]

    @property
    def last(self) -> float:
        return self.per_epoch[-1]

    @property
    def best(self) -> float:
        """The best epoch's val top-1: selected on the val split, so an optimistic estimate."""
        return max(self.per_epoch)


def _probe_loader(
    features: Features, eval_set: EvalSet, protocol: ProbeProtocol, preprocessing: Preprocessing, workers: int, seed: int
) -> torch.utils.data.DataLoader:
    """Augmented train images (``protocol.augment``) or the cached train features, shuffled."""
    if protocol.augment:
        dataset = eval_set.make("train", preprocessing.probe_train())
        return _loader(dataset, protocol.batch_size, workers, shuffle=True, seed=seed, drop_last=protocol.drop_last)
    cached = torch.utils.data.TensorDataset(features.train_x, features.train_y)
    drop = protocol.drop_last and len(cached) >= protocol.batch_size
    return torch.utils.data.DataLoader(cached, batch_size=protocol.batch_size, shuffle=True, drop_last=drop, generator=torch.Generator().manual_seed(seed))


def probe_head(dim: int, num_classes: int, protocol: ProbeProtocol) -> nn.Module:
    """The probe's trainable part: a linear layer, after a non-affine batch norm when ``protocol.batchnorm``."""
    linear = nn.Linear(dim, num_classes)
    return nn.Sequential(nn.BatchNorm1d(dim, affine=False), linear) if protocol.batchnorm else linear


@torch.no_grad()
def _val_top1(head: nn.Module, features: Features, device: torch.device) -> float:
    head.eval()
    pred = head(features.val_x.to(device)).argmax(dim=1).cpu()
    head.train()
    return (pred == features.val_y).float().mean().item()


def linear_probe(
    backbone: nn.Module,
    features: Features,
    eval_set: EvalSet,
    cfg: EvalConfig,
    size: int,
    device: torch.device,
    workers: int,
    seed: int = 0,
    preprocessing: Preprocessing | None = None,
) -> ProbeResult:
    """Train a linear classifier on the frozen backbone for ``cfg.linear_epochs`` epochs by the
    protocol ``cfg.probe()``; val top-1 (centre-crop features) after every epoch.

    SGD with momentum 0.9, cosine learning rate per step from ``base_lr x batch / 256`` to 0. The
    ``fast`` protocol standardises the cached centre-crop train features with a non-affine batch
    norm; the ``reference`` protocol passes random-resized, flipped train images through the frozen
    backbone (eval mode) every epoch into a bare linear layer, as lightly's ``LinearClassifier``
    does in the SAMCLR reference code.
    """
    if cfg.linear_epochs < 1:
        raise ValueError("linear_probe needs linear_epochs >= 1")
    protocol = cfg.probe()
    torch.manual_seed(seed)
    head = probe_head(features.train_x.shape[1], eval_set.num_classes, protocol).to(device)
    loader = _probe_loader(features, eval_set, protocol, preprocessing or Preprocessing(size), workers, seed)
    steps = max(1, cfg.linear_epochs * len(loader))
    lr = protocol.base_lr * protocol.batch_size / 256
    schedule = lr * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=protocol.weight_decay)
    was_training = backbone.training
    backbone.eval()
    step, per_epoch = 0, []
    for _ in range(cfg.linear_epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if protocol.augment:
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    x = backbone(x).float()
            for group in optimizer.param_groups:
                group["lr"] = float(schedule[step])
            loss = F.cross_entropy(head(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        per_epoch.append(_val_top1(head, features, device))
    backbone.train(was_training)
    return ProbeResult(tuple(per_epoch))


def linear_metrics(
    backbone: nn.Module,
    features: Features,
    eval_set: EvalSet,
    cfg: EvalConfig,
    size: int,
    device: torch.device,
    workers: int,
    seed: int = 0,
    preprocessing: Preprocessing | None = None,
) -> dict[str, float]:
    """``linear_top1/<set>`` (the last epoch) and ``linear_best_top1/<set>`` (the best epoch, selected
    on the val split); nothing when ``cfg.linear_epochs`` is 0."""
    if cfg.linear_epochs == 0:
        return {}
    result = linear_probe(backbone, features, eval_set, cfg, size, device, workers, seed, preprocessing)
    return {f"linear_top1/{eval_set.name}": result.last, f"linear_best_top1/{eval_set.name}": result.best}
