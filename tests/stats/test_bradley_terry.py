import math

import choix
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit

from evalsite.stats import ELO_SCALE, bradley_terry, rank_from_intervals
from evalsite.stats.bradley_terry import fit, pair_sums
from evalsite.stats.data import compact

from .simulate import judgments


def random_study(seed=0, n_systems=5, n_prompts=120, per_prompt=6, tie_rate=0.2):
    """Every judgment a random pair of systems with planted strengths; a few ties."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 0.8, n_systems)
    n = n_prompts * per_prompt
    a = rng.integers(0, n_systems, n)
    b = (a + rng.integers(1, n_systems, n)) % n_systems
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    outcome = (rng.random(n) < p).astype(float)
    outcome[rng.random(n) < tie_rate] = 0.5
    return judgments(system_a=a, system_b=b, outcome=outcome, prompt=np.repeat(np.arange(n_prompts), per_prompt)), strength


def totals(j):
    _, prompt_index = compact(j.prompt)
    pairs, n_pp, s_pp = pair_sums(j, prompt_index, int(prompt_index.max()) + 1)
    return pairs, n_pp.sum(axis=0), s_pp.sum(axis=0)


def test_maximum_likelihood_ratings_match_choix_with_ties_as_half_wins():
    j, _ = random_study()
    pairs, n, s = totals(j)
    theta, converged = fit(n, s, pairs, 5, prior=0.0)
    # choix takes a matrix of (fractional) wins: row i beat column j; a tie is half a win each way.
    wins = np.zeros((5, 5))
    for (i, k), nik, sik in zip(pairs, n, s, strict=True):
        wins[i, k] += sik
        wins[k, i] += nik - sik
    reference = choix.ilsr_pairwise_dense(wins, alpha=0.0, tol=1e-13, max_iter=10_000)
    assert converged
    assert np.allclose(theta, reference - reference.mean(), atol=1e-6, rtol=0)


def test_penalised_ratings_match_an_independent_scipy_fit():
    j, _ = random_study(seed=1, n_prompts=40)
    pairs, n, s = totals(j)
    prior = 0.5  # large, so that getting the penalty's form wrong would show

    def negative(theta):
        d = theta[pairs[:, 0]] - theta[pairs[:, 1]]
        return -(s * log_expit(d) + (n - s) * log_expit(-d)).sum() + 0.5 * prior * theta @ theta

    expected = minimize(negative, np.zeros(5), method="BFGS", options={"gtol": 1e-10}).x
    theta, _ = fit(n, s, pairs, 5, prior=prior)
    assert np.allclose(theta, expected, atol=1e-6, rtol=0)


def test_penalised_ratings_match_choix_map_estimate():
    j, _ = random_study(seed=2, n_prompts=40, tie_rate=0.0)
    pairs, n, s = totals(j)
    data = []
    for (i, k), nik, sik in zip(pairs, n, s, strict=True):
        data += [(i, k)] * int(sik) + [(k, i)] * int(nik - sik)
    # choix minimises -loglik + alpha * |theta|^2; ours is -loglik + prior / 2 * |theta|^2.
    expected = choix.opt_pairwise(5, data, alpha=0.05, method="Newton-CG", tol=1e-12)
    theta, _ = fit(n, s, pairs, 5, prior=0.1)
    assert np.allclose(theta, expected, atol=1e-6, rtol=0)


def test_batched_fit_of_many_replicates_equals_fitting_each_alone():
    j, _ = random_study(seed=3)
    _, prompt_index = compact(j.prompt)
    pairs, n_pp, s_pp = pair_sums(j, prompt_index, int(prompt_index.max()) + 1)
    rng = np.random.default_rng(0)
    weights = rng.multinomial(len(n_pp), np.full(len(n_pp), 1 / len(n_pp)), size=8).astype(float)
    batch, converged = fit(weights @ n_pp, weights @ s_pp, pairs, 5, theta0=np.full(5, 0.3))
    assert converged
    for row in range(8):
        alone, _ = fit(weights[row] @ n_pp, weights[row] @ s_pp, pairs, 5)
        assert np.allclose(batch[row], alone, atol=1e-8)


def test_ratings_are_anchored_at_the_reference_and_put_on_the_elo_scale():
    # No ties here: ties planted independently of strength would shrink the differences.
    j, strength = random_study(seed=4, n_prompts=400, tie_rate=0.0)
    result = bradley_terry(j, reference=2, rounds=300)
    by_system = {r.system: r for r in result.ratings}
    assert result.anchor == "reference"
    assert by_system[2].rating == 0.0 and by_system[2].elo == 1000.0
    for r in result.ratings:
        assert r.elo == pytest.approx(1000 + r.rating * 400 / math.log(10))
        assert r.elo_interval.low == pytest.approx(1000 + r.interval.low * ELO_SCALE)
    planted = strength - strength[2]
    fitted = np.array([by_system[i].rating for i in range(5)])
    assert np.allclose(fitted, planted, atol=0.25)
    # The bootstrap intervals cover the planted differences (generous: 5 systems, one seed).
    assert sum(by_system[i].interval.contains(planted[i]) for i in range(5) if i != 2) >= 3


def test_without_a_reference_the_mean_rating_is_zero():
    j, _ = random_study(seed=5)
    result = bradley_terry(j, rounds=100)
    assert result.anchor == "mean"
    assert sum(r.rating for r in result.ratings) == pytest.approx(0.0, abs=1e-9)


def test_rank_counts_only_systems_whose_interval_lies_entirely_above():
    low = np.array([1.0, 0.5, -0.2, -1.0])
    high = np.array([1.5, 1.2, 0.4, -0.5])
    # 0 and 1 overlap: both rank 1. 2 is below both of them; 3 below everyone.
    assert rank_from_intervals(low, high).tolist() == [1, 1, 3, 4]


def test_bootstrap_ranks_respect_intervals():
    j, _ = random_study(seed=6, n_prompts=300)
    result = bradley_terry(j, reference=0, rounds=300)
    for r in result.ratings:
        above = sum(other.interval.low > r.interval.high for other in result.ratings)
        assert r.rank == 1 + above


def test_a_system_that_never_wins_gets_a_finite_rating_from_the_prior_and_the_result_says_the_mle_does_not_exist():
    j = judgments(system_a=[0, 0, 1, 1, 2, 2], system_b=[1, 2, 0, 2, 0, 1],
                  outcome=[1.0, 1.0, 0.0, 0.5, 0.0, 0.5], prompt=[0, 1, 2, 3, 4, 5])
    # system 0 beat everyone and never lost: its MLE is +infinity.
    result = bradley_terry(j, rounds=100)
    assert not result.mle_exists
    assert all(math.isfinite(r.rating) and math.isfinite(r.interval.low) for r in result.ratings)
    assert result.ratings[0].rating > result.ratings[1].rating
    with pytest.raises(ValueError, match="do not exist"):
        bradley_terry(j, prior=0.0, rounds=10)


def test_a_single_pair_reproduces_the_preference_rate():
    j = judgments(system_a=[0] * 10, system_b=[1] * 10, outcome=[1.0] * 6 + [0.5] * 2 + [0.0] * 2,
                  prompt=list(range(10)))
    result = bradley_terry(j, reference=1, prior=0.0, rounds=200)
    rating = {r.system: r.rating for r in result.ratings}[0]
    assert 1 / (1 + math.exp(-rating)) == pytest.approx(0.7, abs=1e-9)


def test_all_ties_give_equal_ratings():
    j = judgments(system_a=[0, 1, 2, 0], system_b=[1, 2, 0, 2], outcome=[0.5] * 4, prompt=[0, 1, 2, 3])
    result = bradley_terry(j, reference=0, rounds=50)
    assert result.mle_exists
    assert all(abs(r.rating) < 1e-12 for r in result.ratings)
    assert all(r.rank == 1 for r in result.ratings)


def test_no_judgments_give_no_ratings():
    empty = judgments(system_a=[], system_b=[], outcome=[], prompt=[])
    assert bradley_terry(empty, reference=0).ratings == []


def test_systems_never_judged_have_no_rating_rather_than_a_made_up_one():
    j = judgments(system_a=[0, 3, 0], system_b=[3, 0, 3], outcome=[1.0, 1.0, 0.5], prompt=[0, 1, 2])
    assert [r.system for r in bradley_terry(j, reference=0, rounds=20).ratings] == [0, 3]
