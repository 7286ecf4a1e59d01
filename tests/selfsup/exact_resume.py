"""The exact-resume check every training path shares (CPU input, GPU input, every method)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from selfsup.training import Pretraining


class Interrupted(Exception):
    """What stands for a killed run: raised right after a checkpoint was written."""


def without_speed(history: list[dict]) -> list[dict]:
    """A run's metrics less ``images_per_s``, the one that depends on the machine's load."""
    return [{k: v for k, v in m.items() if k != "images_per_s"} for m in history]


def assert_resumes_exactly(make: Callable[[], Pretraining], interrupt_after: int, checkpoint: Path) -> None:
    """A run of ``make()`` that writes a checkpoint every epoch and dies after epoch
    ``interrupt_after``, restored into a fresh ``make()`` and finished, ends bit-for-bit where an
    uninterrupted run ends: every weight and buffer (the methods' extra state too: queue, teacher,
    centre, prototypes) and every epoch's metrics but the speed."""
    full = make()
    full.fit()

    def save_then_die(metrics, trainer):
        trainer.save(checkpoint)
        if metrics["epoch"] == interrupt_after:
            raise Interrupted

    with pytest.raises(Interrupted):
        make().fit(save_then_die)
    resumed = make()
    resumed.restore(checkpoint)
    assert resumed.epoch == interrupt_after
    resumed.fit()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith("_extra_state"):
            assert a[key].keys() == b[key].keys(), key
            for name in a[key]:
                assert torch.equal(a[key][name], b[key][name]), (key, name)
        else:
            assert torch.equal(a[key], b[key]), key
    assert without_speed(full.history) == without_speed(resumed.history)
