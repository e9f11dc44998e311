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

from regbench.report.stats import (difference_of_means, holm, paired_p_value, probability_of_improvement,
                                   score_counting_failures, wilson_interval)


def test_probability_of_improvement_counts_wins_and_half_ties_on_shared_seeds():
    treated = {0: 0.7, 1: 0.6, 2: 0.5, 3: 0.9, 8: 1.0}
    baseline = {0: 0.6, 1: 0.6, 2: 0.8, 3: 0.1, 9: 0.0}
    p, low, high, wins, n = probability_of_improvement(treated, baseline)
    assert (p, wins, n) == ((1 + 0.5 + 0 + 1) / 4, 2.5, 4)
    assert (low, high) == wilson_interval(2.5, 4)
    # lower is better (a loss): wins become losses, the tie stays half
    assert probability_of_improvement(treated, baseline, higher_is_better=False)[0] == (0 + 0.5 + 1 + 0) / 4


def test_probability_of_improvement_of_three_wins_in_three_seeds_is_not_certain():
    # the row: 3 seeds that all improved read 1.00 [1.00, 1.00] with a percentile bootstrap
    p, low, high, wins, n = probability_of_improvement({0: 0.7, 1: 0.8, 2: 0.9}, {0: 0.6, 1: 0.7, 2: 0.8})
    assert (p, wins, n, high) == (1.0, 3.0, 3, 1.0)
    assert low == pytest.approx(0.4385, abs=5e-5)
    assert all(map(math.isnan, probability_of_improvement({0: 1.0}, {1: 0.0})[:3]))


# Newcombe (1998), Statistics in Medicine 17:857, Table II, method 3 (score interval, no continuity correction)
NEWCOMBE = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)), ((0, 20), (0.0, 0.1611)),
            ((1, 29), (0.0061, 0.1718)), ((29, 29), (0.8830, 1.0))]


@pytest.mark.parametrize("counts, expected", NEWCOMBE, ids=[f"{s}/{n}" for (s, n), _ in NEWCOMBE])
def test_wilson_interval_matches_newcombes_published_values(counts, expected):
    assert wilson_interval(*counts) == pytest.approx(expected, abs=5e-5)


def test_wilson_interval_ends_are_exact_at_none_and_all_and_solve_the_score_equation():
    z2 = 1.959963984540054 ** 2
    assert wilson_interval(3, 3) == (pytest.approx(3 / (3 + z2), rel=1e-12), 1.0)   # low = n / (n + z²)
    assert wilson_interval(0, 3) == (0.0, pytest.approx(z2 / (3 + z2), rel=1e-12))
    # a tie counts half: 2.5 of 3. Both ends p solve (p̂ − p)² = z² p (1 − p) / n
    for end in wilson_interval(2.5, 3):
        assert (2.5 / 3 - end) ** 2 == pytest.approx(z2 * end * (1 - end) / 3, rel=1e-9)
    assert all(map(math.isnan, wilson_interval(0, 0)))


@pytest.mark.parametrize("raw, adjusted", [
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),   # 4·0.005, 3·0.01, 2·0.03, then max(1·0.04, 0.06)
    ([0.02, 0.5, 0.02], [0.06, 0.5, 0.06]),                  # ties: the same adjusted value, whatever the order
    ([math.nan, 0.01, math.nan, 0.04], [math.nan, 0.02, math.nan, 0.04]),  # NaN: no test, m = 2
    ([0.4, 0.7], [0.8, 0.8]),                                # monotone: never below a smaller p's
    ([0.6, 0.9, 0.2], [1.0, 1.0, 0.6]),                      # capped at 1
    ([0.03], [0.03]), ([], []), ([math.nan], [math.nan]),
], ids=["order", "ties", "nan", "monotone", "cap", "one", "empty", "all-nan"])
def test_holm_adjusts_hand_made_p_vectors(raw, adjusted):
    assert holm(raw).tolist() == pytest.approx(adjusted, nan_ok=True, rel=1e-12)


def test_score_counting_failures_puts_a_failed_seed_at_the_worst_value():
    # accuracy: two seeds at 0.8 and one diverged score (0.8 + 0.8 + 0) / 3, below a clean 0.6
    assert score_counting_failures([0.8, 0.8, 0.1], [False, False, True], worst=0.0) == pytest.approx(1.6 / 3)
    assert score_counting_failures([0.6, 0.6, 0.6], [False] * 3, worst=0.0) == pytest.approx(0.6)
    # loss: any failure is infinitely bad; a seed with no value (NaN) that did not fail is left out
    assert score_counting_failures([0.2, math.nan], [False, True], worst=math.inf) == math.inf
    assert score_counting_failures([0.2, math.nan, 0.4], [False] * 3, worst=math.inf) == pytest.approx(0.3)
    assert math.isnan(score_counting_failures([], [], worst=0.0))


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
    p, _, _, wins, n = probability_of_improvement(treated, base, higher_is_better=False)
    assert (p, wins, n) == (0.5, 1.5, 3)
    assert probability_of_improvement({0: 0.0372}, {0: 0.0371}, higher_is_better=False)[0] == 0.0


def test_an_interval_is_shown_only_from_three_seeds():
    from regbench.report.stats import MIN_SEEDS_FOR_INTERVAL, interval_shown, shown_half_width

    assert MIN_SEEDS_FOR_INTERVAL == 3
    assert [interval_shown(n) for n in range(5)] == [False, False, False, True, True]
    # two seeds 0.80 and 0.82: the t interval is ±0.127 (6.35 times their distance), never shown
    mean, half, n = mean_ci([0.80, 0.82])
    assert half == pytest.approx(12.7062 * 0.01, rel=1e-4)
    assert math.isnan(shown_half_width(half, n))
    assert shown_half_width(*mean_ci([0.80, 0.82, 0.81])[1:]) == pytest.approx(4.3027 * 0.01 / math.sqrt(3), rel=1e-4)
