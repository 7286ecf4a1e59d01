"""Mean, sample std and the paired t interval, against values worked out by hand."""

import math

import pytest

from selfsup.statistics import mean_std, paired_difference


def test_mean_std_is_the_sample_std_and_none_for_one_value():
    mean, std = mean_std([0.50, 0.52, 0.57])
    assert mean == pytest.approx(0.53)
    # deviations -0.03, -0.01, +0.04: squares 0.0026, divided by n - 1 = 2
    assert std == pytest.approx(math.sqrt(0.0013))
    assert mean_std([0.4]) == (0.4, None)
    with pytest.raises(ValueError):
        mean_std([])


def test_paired_difference_pairs_by_position_with_a_t_interval():
    # per-pair differences 0.20, 0.20, 0.23: mean 0.21, sample std sqrt(0.0003), t(0.975, 2) = 4.302653
    d = paired_difference([0.50, 0.52, 0.57], [0.30, 0.32, 0.34])
    half = 4.302653 * math.sqrt(0.0003) / math.sqrt(3)
    assert d.n == 3 and d.mean == pytest.approx(0.21)
    assert (d.low, d.high) == (pytest.approx(0.21 - half, abs=1e-6), pytest.approx(0.21 + half, abs=1e-6))
    assert d.excludes_zero
    # the same values unpaired (shuffled) give another interval: pairing matters
    assert paired_difference([0.57, 0.50, 0.52], [0.30, 0.32, 0.34]).low != pytest.approx(d.low)


def test_paired_difference_without_an_interval_or_with_one_across_zero():
    one = paired_difference([0.5], [0.3])
    assert (one.mean, one.low, one.high, one.n) == (pytest.approx(0.2), None, None, 1)
    assert not one.excludes_zero
    across = paired_difference([0.1, 0.3], [0.2, 0.1])  # differences -0.1, +0.2
    assert across.low < 0 < across.high and not across.excludes_zero
    with pytest.raises(ValueError):
        paired_difference([0.1, 0.2], [0.1])
