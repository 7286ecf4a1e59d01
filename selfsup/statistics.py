"""Small statistics for comparing runs over seeds: mean ± sample std, and paired differences.

``paired_difference(a, b)`` compares two arms run with the same seeds (``a[i]`` and ``b[i]`` share
seed i): the mean of ``a - b`` and its two-sided 95 % confidence interval from Student's t with
n - 1 degrees of freedom (``mean ± t.ppf(0.975, n - 1) · s / √n``, s the sample std of the
differences). With fewer than two pairs there is no interval (``low`` and ``high`` are None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class PairedDifference:
    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when there is an interval and 0 lies outside it."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator; None for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_std of no values")
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """Mean of ``a[i] - b[i]`` with a t-based ``confidence`` interval (none when n < 2)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs pairs: {len(a)} values against {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    mean, std = mean_std(diffs)
    n = len(diffs)
    if std is None:
        return PairedDifference(mean, None, None, n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n)
