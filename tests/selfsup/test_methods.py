"""lightly's losses against direct implementations of the papers' equations, EMA and DINO centring;
the registry builds every method in both presets. Our wiring of each method (symmetrisation, view
routing, queue order, EMA) is tested in test_method_wiring.py."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightly.loss import DINOLoss, NegativeCosineSimilarity, NTXentLoss, SwaVLoss

from selfsup.backbone import resnet18
from selfsup.methods import METHODS, PRESETS, TRAINED
from selfsup.methods.momentum import ema_momentum, ema_update
from selfsup.methods.sce import sce_loss


def unit(*shape):
    return F.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1)


def test_moco_infonce_with_a_queue_matches_the_equation():
    """MoCo: L = -log exp(q.k+/t) / (exp(q.k+/t) + sum_n exp(q.n/t)) (He et al. 2020, Eq. 1)."""
    torch.manual_seed(0)
    q, k, queue, t = unit(4, 8), unit(4, 8), unit(16, 8), 0.2
    crit = NTXentLoss(temperature=t, memory_bank_size=(16, 8))
    crit.memory_bank.bank = queue.float().clone()
    got = crit(q.float(), k.float())
    direct = 0.0
    for i in range(4):
        pos = math.exp(float(q[i] @ k[i]) / t)
        neg = sum(math.exp(float(q[i] @ n) / t) for n in queue)
        direct += -math.log(pos / (pos + neg))
    assert got.item() == pytest.approx(direct / 4, rel=1e-4)


def test_byol_loss_is_negative_cosine_similarity():
    """BYOL: 2 - 2 cos(p, z') up to the constant (Grill et al. 2020, Eq. 2)."""
    torch.manual_seed(0)
    p, z = torch.randn(5, 6), torch.randn(5, 6)
    direct = -np.mean([float(p[i] @ z[i] / (p[i].norm() * z[i].norm())) for i in range(5)])
    assert NegativeCosineSimilarity()(p, z).item() == pytest.approx(direct, rel=1e-5)


def test_dino_loss_and_centring_match_the_equations():
    """DINO: H(P_t, P_s) over pairs of different views, P_t = softmax((t - c)/tau_t); c <- m c + (1 - m) mean t."""
    torch.manual_seed(0)
    dim, batch = 10, 3
    teacher = [torch.randn(batch, dim) for _ in range(2)]
    student = [torch.randn(batch, dim) for _ in range(4)]
    crit = DINOLoss(output_dim=dim, warmup_teacher_temp=0.04, teacher_temp=0.04, student_temp=0.1, center_momentum=0.9)
    center = torch.randn(1, 1, dim)
    crit.center.copy_(center)
    got = crit(teacher, student, epoch=0)
    terms = []
    for it, t in enumerate(teacher):
        pt = F.softmax((t - center[0]) / 0.04, dim=1)
        for js, s in enumerate(student):
            if it == js:
                continue
            terms.append((-(pt * F.log_softmax(s / 0.1, dim=1)).sum(dim=1)).mean())
    assert got.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    expected_center = 0.9 * center + 0.1 * torch.cat(teacher).mean(dim=0)
    assert torch.allclose(crit.center, expected_center, atol=1e-6)


def _sinkhorn(scores, eps=0.05, iterations=3):
    """SwAV's Sinkhorn-Knopp (Caron et al. 2020, Sec. 3.1 and Alg. 1), as a direct loop."""
    q = torch.exp(scores / eps).t()  # K x B
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).t()


def test_swav_swapped_prediction_matches_the_equation():
    """SwAV: codes from each high-resolution crop predict every other crop (Caron et al. 2020, Eq. 1)."""
    torch.manual_seed(0)
    high = [torch.randn(6, 5) for _ in range(2)]
    low = [torch.randn(6, 5) for _ in range(3)]
    got = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)(high, low)
    crops = high + low
    total = 0.0
    for i, h in enumerate(high):
        q = _sinkhorn(h)
        sub = 0.0
        for j, p in enumerate(crops):
            if j != i:
                sub += (-(q * F.log_softmax(p / 0.1, dim=1)).sum(dim=1)).mean()
        total += sub / (len(crops) - 1)
    assert got.item() == pytest.approx(float(total) / len(high), rel=1e-4)


def test_sce_loss_matches_the_equation():
    """SCE (Denize et al. 2023, Eq. 5-7): w = l*onehot + (1-l)*s_teacher, L = -sum w log p_student."""
    torch.manual_seed(0)
    z, zt, queue = unit(3, 4), unit(3, 4), unit(5, 4)
    lam, tau, tau_m = 0.5, 0.1, 0.07
    direct = 0.0
    for i in range(3):
        others = [float(zt[i] @ n) for n in queue]
        denom_t = sum(math.exp(o / tau_m) for o in others)
        s = [0.0] + [math.exp(o / tau_m) / denom_t for o in others]
        w = [lam * (k == 0) + (1 - lam) * s[k] for k in range(len(s))]
        logits = [float(z[i] @ zt[i]) / tau] + [float(z[i] @ n) / tau for n in queue]
        log_norm = math.log(sum(math.exp(x) for x in logits))
        direct += -sum(wk * (lk - log_norm) for wk, lk in zip(w, logits))
    got = sce_loss(z, zt, queue, lam, tau, tau_m)
    assert got.item() == pytest.approx(direct / 3, rel=1e-6)
    # lambda = 1 is InfoNCE with the queue as negatives
    info = sce_loss(z, zt, queue, 1.0, tau, tau_m)
    nce = NTXentLoss(temperature=tau, memory_bank_size=(5, 4))
    nce.memory_bank.bank = queue.float().clone()
    assert info.item() == pytest.approx(nce(z.float(), zt.float()).item(), rel=1e-4)


def test_ema_schedule_and_update():
    assert ema_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert ema_momentum(50, 100, 0.99) == pytest.approx(0.995, abs=1e-3)
    assert ema_momentum(99, 100, 0.99) == pytest.approx(1.0, abs=1e-6)
    assert ema_momentum(99, 100, 0.99, "constant") == 0.99
    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = teacher.weight.detach().clone()
    ema_update([(student, teacher)], 0.9)
    assert torch.allclose(teacher.weight, 0.9 * before + 0.1 * student.weight)


def test_registry_builds_every_method_in_both_presets_with_its_views():
    for name in TRAINED:
        spec = METHODS[name]
        for preset in PRESETS:
            settings = spec.resolve(preset, {"output_dim": 16} if "output_dim" in method_keys(name) else {})
            backbone, dim = resnet18(8, "cifar")
            model = spec.build(backbone, dim, settings, 3)
            views = [torch.randn(4, 3, c.size, c.size) for c in spec.crops(settings, 32) for _ in range(c.n)]
            if hasattr(model, "on_step_start"):
                model.on_step_start(0, 10)
            loss = model(views)
            assert loss.ndim <= 1 and torch.isfinite(loss).all(), (name, preset)
            assert model.backbone is backbone
    dino = METHODS["dino"]
    crops = dino.crops(dino.presets["lightly"], 128)
    assert [(c.n, c.size) for c in crops] == [(1, 128), (1, 128), (6, 64)]
    assert [c.photometric.blur_prob for c in crops] == [1.0, 0.1, 0.5] and crops[1].photometric.solarize_prob == 0.2


def method_keys(name):
    return {f.name for f in dataclasses.fields(METHODS[name].settings)}
