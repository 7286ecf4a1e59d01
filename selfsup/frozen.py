"""A frozen encoder evaluated like a pretraining run: the same KNN and linear probe
(``selfsup.evaluation``), no training.

``FrozenEvaluation`` has ``Pretraining``'s shape (``cfg``, ``history``, ``fit(on_epoch)``,
``save``/``restore``), so the trial function, checkpoints and tracking treat it as a run of one
epoch: its curve has one point, at epoch 1, holding ``knn_top1/<set>``, ``linear_top1/<set>`` and
``linear_best_top1/<set>``. Features come at the encoder's own input size and normalisation
(``selfsup.encoders``), not the sweep's ``image_size``. ``eval.at_start`` does not apply (there is
no untrained state to compare with).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from selfsup.config import EvalConfig, TrainConfig
from selfsup.data.evalsets import EvalSet
from selfsup.encoders import FrozenEncoder, build_encoder
from selfsup.evaluation import extract, knn_top1, linear_metrics
from selfsup.training import Metrics, resolve_device, save_checkpoint


class FrozenEvaluation:
    """KNN top-1 and the linear probe of ``train.method_params``' encoder on every eval set."""

    def __init__(self, train: TrainConfig, evaluation: EvalConfig, eval_sets: Sequence[EvalSet] = ()):
        resolved = train.resolved()
        if resolved.method != "frozen":
            raise ValueError(f"FrozenEvaluation evaluates method 'frozen', not {resolved.method!r}")
        self.cfg = replace(resolved, epochs=1)
        self.eval_cfg = evaluation
        self.eval_sets = list(eval_sets)
        self.device = resolve_device(self.cfg.device)
        self.settings = self.cfg.settings()
        self.epoch = 0
        self.history: list[Metrics] = []
        self._encoder: FrozenEncoder | None = None

    @property
    def encoder(self) -> FrozenEncoder:
        """Built on first use (a finished run restored from its checkpoint loads no weights)."""
        if self._encoder is None:
            torch.manual_seed(self.cfg.seed)  # random weights depend on the seed alone
            s = self.settings
            self._encoder = build_encoder(s.model, s.weights, s.download, s.input_size).to(self.device)
        return self._encoder

    def evaluate(self) -> Metrics:
        metrics: Metrics = {}
        encoder = self.encoder
        pre = encoder.preprocessing
        for eval_set in self.eval_sets:
            features = extract(encoder, eval_set, self.eval_cfg, pre.size, self.device, self.cfg.workers, pre)
            metrics[f"knn_top1/{eval_set.name}"] = knn_top1(features, eval_set.num_classes, self.eval_cfg.knn_k, self.eval_cfg.knn_t)
            metrics.update(linear_metrics(encoder, features, eval_set, self.eval_cfg, pre.size, self.device, self.cfg.workers, self.cfg.seed, pre))
        return metrics

    def fit(self, on_epoch: Callable[[Metrics, FrozenEvaluation], None] | None = None) -> list[Metrics]:
        """Evaluate once (unless a restored checkpoint already has); ``on_epoch(metrics, self)`` after."""
        if self.epoch < self.cfg.epochs:
            self.history.append({"epoch": 1, **self.evaluate()})
            self.epoch = 1
            if on_epoch is not None:
                on_epoch(self.history[-1], self)
        return self.history

    def state_dict(self) -> dict:
        return {"config": asdict(self.cfg), "epoch": self.epoch, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        if state["config"] != asdict(self.cfg):
            raise ValueError("checkpoint was made with another frozen encoder or settings; refusing to resume")
        self.epoch, self.history = state["epoch"], list(state["history"])

    @property
    def trained_backbone(self) -> None:
        """None: a frozen encoder is evaluated, not trained; there is no backbone of ours to hand on."""
        return None

    def save(self, path: str | Path) -> None:
        """Written atomically, as ``Pretraining.save``."""
        save_checkpoint(self.state_dict(), path)

    def restore(self, path: str | Path) -> None:
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
