import math

import pytest

from regbench.report.stats import mean_ci, paired_difference


def test_mean_ci_exact_on_hand_values():
    # mean 2, sample sd 1, n 3: half-width = t(0.975, 2) / sqrt(3) = 4.302652729749464 / sqrt(3)
    mean, half, n = mean_ci([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.302652729749464 / math.sqrt(3), rel=1e-12)


def test_mean_ci_single_and_empty_and_nan():
    assert mean_ci([0.5])[:2] == (0.5, pytest.approx(math.nan, nan_ok=True))
    assert math.isnan(mean_ci([0.5])[1])
    assert math.isnan(mean_ci([])[0])
    assert mean_ci([1.0, math.nan, 3.0])[0] == 2.0


def test_paired_difference_uses_only_shared_seeds():
    mean, half, n = paired_difference({0: 0.7, 1: 0.8, 2: 0.9, 5: 0.0}, {0: 0.6, 1: 0.6, 2: 0.8, 7: 1.0})
    assert n == 3
    assert mean == pytest.approx((0.1 + 0.2 + 0.1) / 3)


def test_paired_difference_ci_is_the_ci_of_the_per_seed_differences():
    # differences 0.10, 0.09, 0.11: mean 0.10, sample sd 0.01
    mean, half, n = paired_difference({0: 0.70, 1: 0.71, 2: 0.75}, {0: 0.60, 1: 0.62, 2: 0.64})
    assert (mean, n) == (pytest.approx(0.10), 3)
    assert half == pytest.approx(4.302652729749464 * 0.01 / math.sqrt(3))


def test_paired_difference_counts_a_seed_only_where_both_sides_are_finite():
    mean, half, n = paired_difference({0: 0.7, 1: math.nan, 2: 0.75}, {0: 0.6, 1: 0.62, 2: math.nan})
    assert (mean, n) == (pytest.approx(0.1), 1) and math.isnan(half)
