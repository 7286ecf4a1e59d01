"""A frozen encoder evaluated like a trained run: one point of the same KNN and linear probe, at the
encoder's own input size and normalisation; checkpoints that make a finished run a no-op."""

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.config import EvalConfig, TrainConfig
from selfsup.data.evalsets import EvalSet
from selfsup.encoders import CLIP_MEAN, CLIP_STD, build_encoder
from selfsup.evaluation import extract, knn_top1
from selfsup.frozen import FrozenEvaluation
from selfsup.training import Pretraining


class Colours(torch.utils.data.Dataset):
    """Reddish (class 0) and bluish (class 1) noisy 24 px images."""

    def __init__(self, n: int, transform, seed: int):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n):
            pixels = rng.integers(0, 120, (24, 24, 3))
            pixels[..., 0 if i % 2 == 0 else 2] += 120
            self.items.append((Image.fromarray(pixels.astype(np.uint8)), i % 2))
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        image, label = self.items[i]
        return self.transform(image), label


COLOURS = EvalSet("colours", 2, lambda split, transform: Colours(24 if split == "train" else 12, transform, seed=split == "val"))
EVAL = EvalConfig(linear_epochs=2, batch_size=64, knn_k=5)


def frozen_config(model="dinov2_vits14", input_size=28, seed=0, **kw):
    params = {"encoder": "e", "model": model, "weights": "random", "input_size": input_size}
    return TrainConfig(method="frozen", method_params=params, device="cpu", workers=0, seed=seed, **kw)


def test_one_point_of_the_trained_trials_metrics():
    run = FrozenEvaluation(frozen_config(), EVAL, [COLOURS])
    history = run.fit()
    assert len(history) == 1 and history[0]["epoch"] == 1 and run.cfg.epochs == 1
    assert set(history[0]) == {"epoch", "knn_top1/colours", "linear_top1/colours", "linear_best_top1/colours"}
    # the same KNN code on the same encoder (random weights drawn from the trial's seed) gives the same number
    torch.manual_seed(0)
    encoder = build_encoder("dinov2_vits14", "random", input_size=28)
    features = extract(encoder, COLOURS, EVAL, 28, torch.device("cpu"), 0, encoder.preprocessing)
    assert history[0]["knn_top1/colours"] == knn_top1(features, 2, EVAL.knn_k, EVAL.knn_t)


def test_features_come_at_the_encoders_own_size_and_normalisation():
    run = FrozenEvaluation(frozen_config("clip_vitb32", input_size=32), EvalConfig(linear_epochs=0, batch_size=64), [COLOURS])
    seen = []
    run.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    metrics = run.fit()[0]
    assert "linear_top1/colours" not in metrics  # linear_epochs 0: no probe, as for trained runs
    first = seen[0][0]
    image = COLOURS.make("train", lambda im: im)[0][0]
    resized = np.asarray(image.resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255
    expected = (torch.from_numpy(resized).permute(2, 0, 1) - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
    assert first.shape == (3, 32, 32)
    assert torch.allclose(first, expected, atol=1e-4)  # CLIP's bicubic and statistics, not ImageNet's


def test_a_restored_finished_run_does_not_evaluate_again(tmp_path):
    run = FrozenEvaluation(frozen_config(), EVAL, [COLOURS])
    run.fit()
    run.save(tmp_path / "state.pt")
    again = FrozenEvaluation(frozen_config(), EVAL, [COLOURS])
    again.restore(tmp_path / "state.pt")
    calls = []
    assert again.fit(lambda metrics, r: calls.append(metrics)) == run.history
    assert calls == [] and again._encoder is None  # no weights loaded, nothing evaluated
    with pytest.raises(ValueError, match="another frozen encoder"):
        FrozenEvaluation(frozen_config(input_size=42), EVAL, [COLOURS]).restore(tmp_path / "state.pt")


def test_the_training_loop_refuses_a_frozen_encoder(tmp_path):
    with pytest.raises(ValueError, match="does not train: selfsup.frozen.FrozenEvaluation evaluates it"):
        Pretraining(frozen_config(), EVAL, tmp_path)
