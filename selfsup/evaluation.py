"""Evaluation of a frozen backbone: KNN top-1 and a linear probe (SAMCLR paper, Sec. 4.1).

KNN follows the reference code and lightly's benchmarks: cosine similarity on L2-normalised
backbone features (before the projection head), k = 200, temperature 0.1, lightly's
``knn_predict``. The linear probe trains a linear classifier on the frozen features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.utils.benchmarking import knn_predict

from selfsup.config import EvalConfig
from selfsup.data.evalsets import EvalSet, eval_transform, probe_train_transform


@dataclass(frozen=True)
class Features:
    """Backbone features (float32, CPU) and labels of an eval set's train and val splits."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def _loader(dataset: torch.utils.data.Dataset, batch_size: int, workers: int, shuffle: bool = False, seed: int = 0) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
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


def extract(backbone: nn.Module, eval_set: EvalSet, cfg: EvalConfig, size: int, device: torch.device, workers: int) -> Features:
    transform = eval_transform(size)
    train = embed(backbone, _loader(eval_set.make("train", transform), cfg.batch_size, workers), device)
    val = embed(backbone, _loader(eval_set.make("val", transform), cfg.batch_size, workers), device)
    return Features(*train, *val)


def knn_top1(features: Features, num_classes: int, k: int = 200, t: float = 0.1, chunk: int = 1024) -> float:
    """Top-1 accuracy of a weighted KNN classifier (lightly's ``knn_predict``) on val features."""
    bank = F.normalize(features.train_x, dim=1).t().contiguous()
    k = min(k, bank.shape[1])
    correct = 0
    for start in range(0, len(features.val_x), chunk):
        q = F.normalize(features.val_x[start : start + chunk], dim=1)
        pred = knn_predict(q, bank, features.train_y, num_classes, k, t)
        correct += (pred[:, 0] == features.val_y[start : start + chunk]).sum().item()
    return correct / len(features.val_x)


def linear_top1(
    backbone: nn.Module,
    features: Features,
    eval_set: EvalSet,
    cfg: EvalConfig,
    size: int,
    device: torch.device,
    workers: int,
    seed: int = 0,
) -> float:
    """Top-1 on val of a linear classifier trained on the frozen backbone's train features.

    SGD with momentum 0.9 and a cosine learning rate, ``cfg.linear_epochs`` epochs; features are
    standardised by a non-affine batch norm. With ``cfg.linear_augment`` the train images go
    through random-resized crops and flips and the frozen backbone every epoch, as the reference
    code does; otherwise the cached centre-crop features are used.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dim = features.train_x.shape[1]
    head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, eval_set.num_classes)).to(device)
    if cfg.linear_augment:
        loader = _loader(eval_set.make("train", probe_train_transform(size)), cfg.linear_batch_size, workers, shuffle=True, seed=seed)
    else:
        cached = torch.utils.data.TensorDataset(features.train_x, features.train_y)
        loader = torch.utils.data.DataLoader(cached, batch_size=cfg.linear_batch_size, shuffle=True, generator=gen)
    steps = max(1, cfg.linear_epochs * len(loader))
    lr = cfg.linear_lr * cfg.linear_batch_size / 256
    schedule = lr * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9)
    was_training = backbone.training
    backbone.eval()
    step = 0
    for _ in range(cfg.linear_epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.linear_augment:
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    x = backbone(x).float()
            for group in optimizer.param_groups:
                group["lr"] = float(schedule[step])
            loss = F.cross_entropy(head(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    backbone.train(was_training)
    head.eval()
    with torch.no_grad():
        pred = head(features.val_x.to(device)).argmax(dim=1).cpu()
    return (pred == features.val_y).float().mean().item()
