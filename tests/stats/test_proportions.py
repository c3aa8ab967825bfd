import math

import numpy as np
import pytest
from scipy import stats

from evalsite.stats import position_bias, sign_test, wilson_interval
from evalsite.stats.proportions import wilson_bounds


def test_wilson_matches_hand_computed_8_of_10():
    # z = 1.959964, z^2 = 3.841459, p = 0.8, n = 10:
    # centre = (0.8 + 3.841459 / 20) / (1 + 3.841459 / 10) = 0.99207295 / 1.3841459 = 0.716741
    # half   = 1.959964 / 1.3841459 * sqrt(0.16 / 10 + 3.841459 / 400) = 1.416011 * 0.160011 = 0.226577
    interval = wilson_interval(8, 10)
    assert interval.low == pytest.approx(0.716741 - 0.226577, abs=2e-6)
    assert interval.high == pytest.approx(0.716741 + 0.226577, abs=2e-6)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.4902, 0.9433)


def test_wilson_stays_inside_0_1_at_the_extremes_and_is_undefined_for_no_trials():
    zero = wilson_interval(0, 20)
    assert zero.low == 0.0 and 0.0 < zero.high < 0.2
    full = wilson_interval(20, 20)
    assert full.high == 1.0 and 0.8 < full.low < 1.0
    empty = wilson_interval(0, 0)
    assert math.isnan(empty.low) and math.isnan(empty.high)


def test_wilson_narrows_with_lower_confidence():
    wide, narrow = wilson_interval(30, 100, 0.99), wilson_interval(30, 100, 0.80)
    assert wide.low < narrow.low < 0.3 < narrow.high < wide.high


@pytest.mark.parametrize("n, p", [(60, 0.4), (200, 0.4)])
def test_wilson_95_interval_covers_the_true_rate_in_93_to_97_percent_of_simulated_studies(n, p):
    rng = np.random.default_rng(11)
    successes = rng.binomial(n, p, size=4000)
    low, high = wilson_bounds(successes, n)
    coverage = np.mean((low <= p) & (p <= high))
    assert 0.93 <= coverage <= 0.97, coverage


@pytest.mark.parametrize("wins, losses", [(14, 6), (3, 9), (10, 10), (0, 7), (1, 0)])
def test_sign_test_is_scipys_two_sided_binomial_test_on_decisive_judgments(wins, losses):
    result = sign_test(wins, losses)
    expected = stats.binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert (result.successes, result.n) == (wins, wins + losses)


def test_sign_test_without_decisive_judgments_has_p_one():
    assert sign_test(0, 0).p_value == 1.0


def test_position_bias_recovers_a_planted_preference_for_the_left_response():
    rng = np.random.default_rng(3)
    n = 5000
    left_is_a = rng.random(n) < 0.5
    chose_left = rng.random(n) < 0.6
    outcome = np.where(chose_left == left_is_a, 1.0, 0.0)
    outcome[rng.random(n) < 0.1] = 0.5  # ties choose no side and are left out
    result = position_bias(outcome, left_is_a)
    assert result.n_decisive == int((outcome != 0.5).sum())
    assert result.wilson.contains(0.6) and not result.wilson.contains(0.5)
    assert result.left_share == pytest.approx(0.6, abs=0.02)
    assert result.test.p_value < 1e-10
    k = int(((outcome == 1.0) == left_is_a)[outcome != 0.5].sum())
    assert result.left_chosen == k
    assert result.test.p_value == pytest.approx(stats.binomtest(k, result.n_decisive, 0.5).pvalue)


def test_position_bias_without_planted_bias_is_not_significant():
    rng = np.random.default_rng(4)
    left_is_a = rng.random(3000) < 0.5
    outcome = (rng.random(3000) < 0.7).astype(float)  # a strong quality difference, but no side preference
    result = position_bias(outcome, left_is_a)
    assert result.wilson.contains(0.5)
    assert result.test.p_value > 0.01


def test_position_bias_is_undefined_when_sides_were_not_recorded():
    result = position_bias(np.array([1.0, 0.0]), None)
    assert result.n_decisive == 0 and math.isnan(result.left_share) and result.n_unknown_side == 2
