"""The linear probe's two protocols on a tiny two-colour eval set and a frozen pooling backbone."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from selfsup.config import PROBE_PROTOCOLS, EvalConfig
from selfsup.data.evalsets import EvalSet
from selfsup.evaluation import extract, linear_metrics, linear_probe, probe_head

SIZE = 16


class Colours(torch.utils.data.Dataset):
    """Reddish (class 0) and bluish (class 1) noisy 24 px images; ``n`` of them."""

    def __init__(self, n: int, transform, seed: int):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            label = i % 2
            pixels = rng.integers(0, 120, (24, 24, 3))
            pixels[..., 0 if label == 0 else 2] += 120
            self.items.append((Image.fromarray(pixels.astype(np.uint8)), label))
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        image, label = self.items[i]
        return self.transform(image), label


COLOURS = EvalSet("colours", 2, lambda split, transform: Colours(40 if split == "train" else 20, transform, seed=split == "val"))


class Recorder(nn.Module):
    """A frozen backbone (mean colour per 2 x 2 cell) that keeps every batch it sees."""

    def __init__(self):
        super().__init__()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.pool(x)


def probe(protocol: str, epochs: int = 3, **overrides):
    cfg = EvalConfig(linear_epochs=epochs, linear_protocol=protocol, batch_size=64, **overrides)
    backbone = Recorder()
    features = extract(backbone, COLOURS, cfg, SIZE, torch.device("cpu"), workers=0)
    backbone.seen.clear()
    return cfg, backbone, features


def spy_sgd(monkeypatch):
    made = []
    real = torch.optim.SGD

    def sgd(params, **kwargs):
        made.append(kwargs)
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", sgd)
    return made


def test_reference_protocol_feeds_new_augmented_images_through_the_backbone_every_epoch(monkeypatch):
    cfg, backbone, features = probe("reference", epochs=2, linear_batch_size=16)
    made = spy_sgd(monkeypatch)
    result = linear_probe(backbone, features, COLOURS, cfg, SIZE, torch.device("cpu"), workers=0)
    # 40 train images at batch 16, last incomplete batch dropped: 2 batches of 16 per epoch
    assert [len(x) for x in backbone.seen] == [16] * 4
    first, second = torch.cat(backbone.seen[:2]), torch.cat(backbone.seen[2:])
    assert first.shape[-1] == SIZE and not torch.allclose(first, second)
    assert made == [{"lr": pytest.approx(0.1 * 16 / 256), "momentum": 0.9, "weight_decay": 0.0}]
    assert len(result.per_epoch) == 2


def test_fast_protocol_trains_on_cached_features_without_the_backbone(monkeypatch):
    cfg, backbone, features = probe("fast", epochs=4)
    made = spy_sgd(monkeypatch)
    result = linear_probe(backbone, features, COLOURS, cfg, SIZE, torch.device("cpu"), workers=0)
    assert backbone.seen == []
    assert made[0]["lr"] == pytest.approx(0.1)  # base 0.1 at the fast protocol's batch 256
    assert len(result.per_epoch) == 4 and result.last == result.per_epoch[-1]
    assert result.last > 0.9  # the colours are linearly separable


def test_reference_head_is_a_bare_linear_layer_and_the_fast_one_normalises_first():
    reference = probe_head(12, 2, PROBE_PROTOCOLS["reference"])
    assert isinstance(reference, nn.Linear)
    fast = probe_head(12, 2, PROBE_PROTOCOLS["fast"])
    assert [type(m) for m in fast] == [nn.BatchNorm1d, nn.Linear] and not fast[0].affine
    protocol = EvalConfig(linear_protocol="reference").probe()
    assert (protocol.augment, protocol.batch_size, protocol.base_lr) == (True, 128, 0.1)


def test_metrics_are_the_last_epoch_and_the_best_epoch_and_nothing_without_epochs(monkeypatch):
    cfg, backbone, features = probe("fast", epochs=3)
    scores = iter([0.5, 0.9, 0.7])
    monkeypatch.setattr("selfsup.evaluation._val_top1", lambda head, features, device: next(scores))
    metrics = linear_metrics(backbone, features, COLOURS, cfg, SIZE, torch.device("cpu"), workers=0)
    assert metrics == {"linear_top1/colours": 0.7, "linear_best_top1/colours": 0.9}
    none = EvalConfig(linear_epochs=0)
    assert linear_metrics(backbone, features, COLOURS, none, SIZE, torch.device("cpu"), workers=0) == {}
