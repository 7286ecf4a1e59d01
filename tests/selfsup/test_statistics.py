import math

import pytest

from selfsup.statistics import mean_std, paired_difference


def test_paired_difference_matches_a_hand_computation():
    # differences 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3,
    # t(0.975, 3) = 3.182446, half width = 3.182446 * 2.160247 / 2 = 3.437435
    d = paired_difference([11.0, 22.0, 33.0, 46.0], [10.0, 20.0, 30.0, 40.0])
    assert d.n == 4 and d.mean == pytest.approx(3.0)
    assert d.low == pytest.approx(3.0 - 3.437435, abs=1e-5)
    assert d.high == pytest.approx(3.0 + 3.437435, abs=1e-5)
    assert not d.excludes_zero


def test_three_pairs_and_an_interval_that_excludes_zero():
    # differences -2, -3, -4: mean -3, sample std 1, t(0.975, 2) = 4.302653, half width 4.302653 / sqrt(3) = 2.484138
    d = paired_difference([60.0, 61.0, 62.0], [62.0, 64.0, 66.0])
    assert d.mean == pytest.approx(-3.0)
    assert (d.low, d.high) == (pytest.approx(-5.484138, abs=1e-5), pytest.approx(-0.515862, abs=1e-5))
    assert d.excludes_zero


def test_one_pair_has_no_interval():
    d = paired_difference([0.7], [0.5])
    assert d.n == 1 and d.mean == pytest.approx(0.2) and d.low is None and d.high is None
    assert not d.excludes_zero


def test_unpaired_lengths_are_refused():
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


def test_mean_std_uses_the_sample_std():
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx(math.sqrt(5 / 3)))
    assert mean_std([5.0]) == (5.0, None)
