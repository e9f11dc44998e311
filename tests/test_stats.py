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


# --- probability of improvement, paired p-value, Welch difference --------------------------------------

import numpy as np
from scipy import stats

from regbench.report.stats import difference_of_means, paired_p_value, probability_of_improvement


def test_probability_of_improvement_counts_wins_and_half_ties_on_shared_seeds():
    treated = {0: 0.7, 1: 0.6, 2: 0.5, 3: 0.9, 8: 1.0}
    baseline = {0: 0.6, 1: 0.6, 2: 0.8, 3: 0.1, 9: 0.0}
    p, low, high, n = probability_of_improvement(treated, baseline)
    assert (p, n) == ((1 + 0.5 + 0 + 1) / 4, 4)
    assert 0 <= low <= p <= high <= 1
    # lower is better (a loss): wins become losses, the tie stays half
    assert probability_of_improvement(treated, baseline, higher_is_better=False)[0] == (0 + 0.5 + 1 + 0) / 4


def test_probability_of_improvement_bootstrap_is_deterministic_and_degenerate_when_all_win():
    treated = {s: 0.5 + 0.01 * s for s in range(6)}
    baseline = {s: 0.5 + 0.02 * ((s * 7) % 5) for s in range(6)}
    first = probability_of_improvement(treated, baseline)
    assert probability_of_improvement(treated, baseline) == first      # same inputs, same numbers
    assert probability_of_improvement({0: 1.0, 1: 1.0}, {0: 0.0, 1: 0.0})[:3] == (1.0, 1.0, 1.0)
    assert math.isnan(probability_of_improvement({0: 1.0}, {1: 0.0})[0])


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_seed_means():
    wins = np.array([1.0, 0.0, 1.0])  # treated beats baseline on seeds 0 and 2
    rows = np.random.default_rng(0).integers(0, 3, size=(2000, 3))
    expected = np.percentile(wins[rows].mean(1), [2.5, 97.5])
    _, low, high, _ = probability_of_improvement({0: 2.0, 1: 0.0, 2: 2.0}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert (low, high) == tuple(expected)


def test_paired_p_value_is_scipys_paired_t_test_on_shared_seeds():
    treated = {0: 0.70, 1: 0.71, 2: 0.75, 3: 0.69, 7: 0.1}
    baseline = {0: 0.60, 1: 0.62, 2: 0.64, 3: 0.70, 8: 0.9}
    p, n = paired_p_value(treated, baseline)
    reference = stats.ttest_rel([0.70, 0.71, 0.75, 0.69], [0.60, 0.62, 0.64, 0.70]).pvalue
    assert n == 4 and p == pytest.approx(reference, rel=1e-12)


def test_paired_p_value_is_nan_without_spread_or_with_one_seed():
    assert math.isnan(paired_p_value({0: 0.7}, {0: 0.6})[0])
    assert math.isnan(paired_p_value({0: 0.7, 1: 0.8}, {0: 0.6, 1: 0.7})[0])  # both differences 0.1


def test_difference_of_means_is_welchs_interval():
    a, b = np.array([0.1, 0.3, 0.2]), np.array([0.5, 0.9, 0.7, 0.6])
    diff, half = difference_of_means(a, b)
    reference = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(b.mean() - a.mean())
    assert (diff - half, diff + half) == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert math.isnan(difference_of_means([0.1], b)[1])


def test_probability_of_improvement_ties_values_equal_up_to_float32_rounding():
    # a technique too weak to move the loss (toy1d grad_penalty: Δ +0.000) must read 0.5, not 0 or 1
    base = {0: 0.0371, 1: 0.0402, 2: 0.0388}
    treated = {s: float(np.float32(v) * np.float32(1 + 2e-7)) for s, v in base.items()}
    p, low, high, n = probability_of_improvement(treated, base, higher_is_better=False)
    assert (p, low, high, n) == (0.5, 0.5, 0.5, 3)
    assert probability_of_improvement({0: 0.0372}, {0: 0.0371}, higher_is_better=False)[0] == 0.0
