"""Statistics over seeds for results tables: mean and sample std, and paired differences.

Two configurations run with the same seed share their initialisation (and their data order), so
their difference is measured per seed: the mean of the per-seed differences with a t-based 95 %
interval (Student's t with n - 1 degrees of freedom), as for any paired design. Pure Python and
scipy: no torch, no Ray, no MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator); std None for fewer than two values."""
    if not values:
        raise ValueError("mean_std of no values")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-pair differences a - b with its 95 % t interval [low, high] (None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or below zero (False without an interval)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """Differences ``a[i] - b[i]`` paired by position (by seed), their mean and its 95 % t interval:
    mean ± t(0.975, n - 1) x s / sqrt(n), s the sample std of the differences."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} values against {len(b)}; pairs need equal lengths")
    diffs = [x - y for x, y in zip(a, b)]
    mean, std = mean_std(diffs)
    n = len(diffs)
    if std is None:
        return PairedDifference(mean, None, None, n)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n)
