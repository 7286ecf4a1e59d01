"""Shared fixtures: one tiny synthetic dataset per test session, written as ordinary files."""

from __future__ import annotations

import pytest

from selfsup.data.synthetic import SyntheticConfig, generate

TINY = SyntheticConfig(
    num_classes=4,
    scenes=48,
    scene_size=64,
    objects_per_scene=(2, 3),
    object_size=(20, 30),
    eval_size=32,
    eval_train_per_class=8,
    eval_val_per_class=4,
    clutter=12,
    seed=0,
)
TINY_MIN_AREA = 100


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), TINY)
