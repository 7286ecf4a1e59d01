"""Our wiring of each method, each test able to fail for the reason its name gives: which views are
paired in the symmetric losses, which views the teacher sees, the order of queue reads and writes,
the EMA update, frozen layers and prototypes, and the presets' values against their sources."""

import math

import pytest
import torch
import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity, NTXentLoss

from selfsup.backbone import resnet18
from selfsup.config import TrainConfig
from selfsup.methods import METHODS
from selfsup.methods.byol import BYOL, BYOLSettings
from selfsup.methods.dino import DINO, DINOSettings
from selfsup.methods.moco import MoCo, MoCoSettings
from selfsup.methods.sce import SCE, SCESettings, sce_loss
from selfsup.methods.simclr import SimCLR, SimCLRSettings
from selfsup.methods.swav import SwAV, SwAVSettings
from selfsup.training import make_optimizer


def backbone():
    torch.manual_seed(0)
    return resnet18(8, "cifar")


def views(n=2, batch=4, size=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=g) for _ in range(n)]


def direct_infonce(q, k, negatives, t):
    """He et al. 2020, Eq. 1, one query at a time."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    total = 0.0
    for i in range(len(q)):
        pos = math.exp(float(q[i] @ k[i]) / t)
        neg = sum(math.exp(float(q[i] @ n) / t) for n in negatives)
        total += -math.log(pos / (pos + neg))
    return total / len(q)


def test_moco_scores_both_terms_against_the_queue_before_the_step_then_enqueues_both_keys():
    b, d = backbone()
    model = MoCo(b, d, MoCoSettings(queue_size=16, output_dim=8, hidden_dim=16))
    x0, x1 = views()
    before = model.queue.keys.clone()
    loss = model([x0, x1])
    with torch.no_grad():
        q0, q1 = model.projection(model.backbone(x0)), model.projection(model.backbone(x1))
        k0 = model.projection_momentum(model.backbone_momentum(x0))
        k1 = model.projection_momentum(model.backbone_momentum(x1))
    expected = 0.5 * (direct_infonce(q0, k1, before, 0.1) + direct_infonce(q1, k0, before, 0.1))
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    # the query's own view's key is no negative of its term (it was, when the first term enqueued k1)
    own = direct_infonce(q1, k0, torch.cat([F.normalize(k1, dim=1), before[4:]]), 0.1)
    assert abs(own - direct_infonce(q1, k0, before, 0.1)) > 1e-3
    assert torch.allclose(model.queue.keys[:8], F.normalize(torch.cat([k0, k1]), dim=1), atol=1e-6)
    assert torch.equal(model.queue.keys[8:], before[8:]) and int(model.queue.ptr) == 8


def test_moco_one_direction_in_the_paper_preset():
    b, d = backbone()
    model = MoCo(b, d, MoCoSettings(queue_size=16, output_dim=8, hidden_dim=16, symmetric=False))
    x0, x1 = views()
    before = model.queue.keys.clone()
    loss = model([x0, x1])
    with torch.no_grad():
        q0 = model.projection(model.backbone(x0))
        k1 = model.projection_momentum(model.backbone_momentum(x1))
    assert loss.item() == pytest.approx(direct_infonce(q0, k1, before, 0.1), rel=1e-4)
    assert int(model.queue.ptr) == 4


def test_moco_queue_survives_a_checkpoint():
    b, d = backbone()
    model = MoCo(b, d, MoCoSettings(queue_size=16, output_dim=8, hidden_dim=16))
    model(views())
    b2, d2 = backbone()
    other = MoCo(b2, d2, MoCoSettings(queue_size=16, output_dim=8, hidden_dim=16))
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.queue.keys, model.queue.keys) and int(other.queue.ptr) == 8


@pytest.mark.parametrize("one_batch", [False, True])
def test_simclr_pairs_view_0_with_view_1_through_the_chosen_batchnorm_batches(one_batch):
    b, d = backbone()
    model = SimCLR(b, d, SimCLRSettings(views_in_one_batch=one_batch))
    x0, x1 = views()
    loss = model([x0, x1])
    with torch.no_grad():
        apart = model.projection(model.backbone(x0)), model.projection(model.backbone(x1))
        together = model.projection(model.backbone(torch.cat([x0, x1]))).chunk(2)
    crit = NTXentLoss(temperature=0.5)
    expected, other = (together, apart) if one_batch else (apart, together)
    assert loss.item() == pytest.approx(crit(*expected).item(), rel=1e-5)
    assert abs(loss.item() - crit(*other).item()) > 1e-4  # BatchNorm statistics differ between the two


def test_byol_predicts_each_views_target_from_the_other_view():
    b, d = backbone()
    model = BYOL(b, d, BYOLSettings(hidden_dim=32, output_dim=8, prediction_hidden_dim=32))
    with torch.no_grad():  # a teacher unlike the student, so that the pairing matters
        for p in model.backbone_momentum.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x0, x1 = views()
    loss = model([x0, x1])
    with torch.no_grad():
        p0 = model.prediction(model.projection(model.backbone(x0)))
        p1 = model.prediction(model.projection(model.backbone(x1)))
        z0 = model.projection_momentum(model.backbone_momentum(x0))
        z1 = model.projection_momentum(model.backbone_momentum(x1))
    crit = NegativeCosineSimilarity()
    assert loss.item() == pytest.approx(0.5 * (crit(p0, z1) + crit(p1, z0)).item(), rel=1e-5)
    assert abs(loss.item() - 0.5 * (crit(p0, z0) + crit(p1, z1)).item()) > 1e-4
    loss.backward()
    assert all(p.grad is None for p in model.backbone_momentum.parameters())  # no gradient into the target


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_teacher_moves_towards_the_student_by_the_scheduled_momentum(schedule):
    b, d = backbone()
    model = BYOL(b, d, BYOLSettings(hidden_dim=32, output_dim=8, prediction_hidden_dim=32, ema=0.9, ema_schedule=schedule))
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    teacher = [p.detach().clone() for p in model.backbone_momentum.parameters()]
    student = [p.detach().clone() for p in model.backbone.parameters()]
    buffers = [t.clone() for t in model.backbone_momentum.buffers()]
    model.on_step_start(5, 10)
    m = 0.9 if schedule == "constant" else 0.9 + 0.1 * (1 - math.cos(math.pi * 5 / 9)) / 2
    for t0, s, t1 in zip(teacher, student, model.backbone_momentum.parameters()):
        assert torch.allclose(t1, m * t0 + (1 - m) * s, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.backbone_momentum.buffers()))  # parameters only


def test_dino_teacher_sees_the_two_global_views_and_the_student_all_of_them():
    b, d = backbone()
    model = DINO(b, d, DINOSettings(hidden_dim=32, bottleneck_dim=8, output_dim=16), epochs=10)
    seen = {"teacher": [], "student": []}
    model.teacher_backbone.register_forward_hook(lambda m, i, o: seen["teacher"].append(i[0].shape[-1]))
    model.backbone.register_forward_hook(lambda m, i, o: seen["student"].append(i[0].shape[-1]))
    x = views(2, size=16) + views(6, size=8, seed=2)
    model.on_step_start(0, 10)
    loss = model(x)
    assert seen == {"teacher": [16, 16], "student": [16, 16] + [8] * 6}
    assert torch.isfinite(loss)


def test_dino_last_layer_gets_no_gradient_during_its_frozen_epochs():
    b, d = backbone()
    model = DINO(b, d, DINOSettings(hidden_dim=32, bottleneck_dim=8, output_dim=16, freeze_last_layer=1), epochs=2)
    x = views(2, size=16) + views(2, size=8, seed=2)
    last = model.head.last_layer
    for step, frozen in ((0, True), (5, False)):  # 10 steps over 2 epochs: step 5 is epoch 1
        model.zero_grad()
        model.on_step_start(step, 10)
        model(x).backward()
        model.on_after_backward(step, 10)
        grads = [p.grad for p in last.parameters() if p.requires_grad]
        assert all(g is None or not g.any() for g in grads) == frozen, step


def test_swav_codes_come_from_the_high_resolution_crops_only():
    b, d = backbone()
    model = SwAV(b, d, SwAVSettings(hidden_dim=32, output_dim=8, n_prototypes=12), epochs=1)
    x = views(2, size=16) + views(3, size=8, seed=2)
    model.on_step_start(0, 10)
    loss = model(x)
    with torch.no_grad():
        p = [model.prototypes(F.normalize(model.projection(model.backbone(v)), dim=1)) for v in x]
    assert loss.item() == pytest.approx(model.criterion(p[:2], p[2:]).item(), rel=1e-4)
    assert abs(loss.item() - model.criterion(p[:1], p[1:]).item()) > 1e-5


def test_swav_prototypes_are_frozen_during_the_first_epoch_in_the_paper_preset():
    b, d = backbone()
    model = SwAV(b, d, SwAVSettings(hidden_dim=32, output_dim=8, n_prototypes=12, freeze_prototypes_epochs=1), epochs=2)
    x = views(2, size=16) + views(2, size=8, seed=2)
    for step, frozen in ((0, True), (5, False)):
        model.zero_grad()
        model.on_step_start(step, 10)
        model(x).backward()
        weight = model.prototypes.heads[0].weight
        assert (weight.grad is None) == frozen, step


def test_sce_scores_both_terms_against_the_queue_before_the_step_then_enqueues_both_keys():
    b, d = backbone()
    model = SCE(b, d, SCESettings(queue_size=16, output_dim=8))
    x0, x1 = views()
    before = model.queue.keys.clone()
    loss = model([x0, x1])
    with torch.no_grad():
        p0 = F.normalize(model.prediction(model.projection(model.backbone(x0))), dim=1)
        p1 = F.normalize(model.prediction(model.projection(model.backbone(x1))), dim=1)
        k0 = F.normalize(model.projection_momentum(model.backbone_momentum(x0)), dim=1)
        k1 = F.normalize(model.projection_momentum(model.backbone_momentum(x1)), dim=1)
    expected = 0.5 * (sce_loss(p0, k1, before) + sce_loss(p1, k0, before))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(model.queue.keys[:8], torch.cat([k0, k1]), atol=1e-6)


# -- presets: each value against its source ------------------------------------------------------

LIGHTLY_BENCHMARK = {  # lightly's imagenette_benchmark.py (ResNet18): the values its models are built with
    "simclr": {"temperature": 0.5, "output_dim": 128, "cj_strength": 0.5, "optimizer": "sgd", "base_lr": 0.06, "weight_decay": 5e-4},
    "moco": {"temperature": 0.1, "hidden_dim": 2048, "output_dim": 128, "queue_size": 4096, "ema": 0.99, "ema_schedule": "constant", "symmetric": True},
    "byol": {"hidden_dim": 4096, "output_dim": 256, "prediction_hidden_dim": 4096, "ema": 0.99, "ema_schedule": "constant", "cj_strength": 1.0},
    "dino": {"hidden_dim": 2048, "bottleneck_dim": 256, "output_dim": 2048, "batch_norm": True, "ema": 0.99, "freeze_last_layer": -1, "cj_strength": 0.5},
    "swav": {"hidden_dim": 2048, "output_dim": 128, "n_prototypes": 3000, "optimizer": "adam", "base_lr": 1e-3, "weight_decay": 1e-6},
}


@pytest.mark.parametrize("method", sorted(LIGHTLY_BENCHMARK))
def test_lightly_preset_is_the_default_and_holds_lightlys_benchmark_values(method):
    settings = TrainConfig(method=method).settings()
    assert {k: getattr(settings, k) for k in LIGHTLY_BENCHMARK[method]} == LIGHTLY_BENCHMARK[method]


def test_lightly_preset_builds_lightlys_modules_and_optimisers():
    b, d = resnet18()
    moco = METHODS["moco"].build(b, d, TrainConfig(method="moco").settings(), 10)
    assert [m.out_features for m in moco.projection.modules() if isinstance(m, torch.nn.Linear)] == [2048, 128]
    swav_cfg = TrainConfig(method="swav", batch_size=128)
    swav = METHODS["swav"].build(*resnet18(), swav_cfg.settings(), 10)
    optimizer = make_optimizer(swav, swav_cfg.settings(), swav_cfg.lr)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == pytest.approx(1e-3 * 128 / 256)
    assert optimizer.defaults["weight_decay"] == 1e-6
    byol_cfg = TrainConfig(method="byol", preset="paper")
    byol = METHODS["byol"].build(*resnet18(), byol_cfg.settings(), 10)
    assert type(make_optimizer(byol, byol_cfg.settings(), byol_cfg.lr)).__name__ == "LARS"
    assert not any(p is q for p in make_optimizer(byol, byol_cfg.settings(), 0.1).param_groups[0]["params"] for q in byol.backbone_momentum.parameters())


def test_paper_presets_hold_the_papers_values():
    moco = TrainConfig(method="moco", preset="paper").settings()
    assert (moco.temperature, moco.queue_size, moco.ema, moco.symmetric, moco.base_lr, moco.min_scale) == (0.2, 65536, 0.999, False, 0.03, 0.2)
    byol = TrainConfig(method="byol", preset="paper").settings()
    assert (byol.ema, byol.ema_schedule, byol.optimizer, byol.base_lr) == (0.996, "cosine", "lars", 0.2)
    dino = TrainConfig(method="dino", preset="paper").settings()
    assert (dino.output_dim, dino.batch_norm, dino.freeze_last_layer, dino.global_scale, dino.local_scale) == (65536, False, 1, (0.14, 1.0), (0.05, 0.14))
    assert TrainConfig(method="samclr", preset="paper").settings().temperature == 0.07


def test_single_values_override_the_preset_and_bad_ones_are_named():
    cfg = TrainConfig(method="moco", method_params={"temperature": 0.3, "queue_size": 128}).resolved()
    assert (cfg.method_params["temperature"], cfg.method_params["queue_size"], cfg.method_params["ema"]) == (0.3, 128, 0.99)
    with pytest.raises(ValueError, match="unknown method setting.*prototypes"):
        TrainConfig(method="moco", method_params={"prototypes": 3}).settings()
    with pytest.raises(ValueError, match="cj_strength"):
        TrainConfig(method="simclr", method_params={"cj_strength": 3.0}).settings()  # hue jitter > 0.5
    with pytest.raises(ValueError, match="temperature"):
        TrainConfig(method="simclr", method_params={"temperature": 0}).settings()
