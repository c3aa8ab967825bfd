import math

import numpy as np
import pytest

from evalsite.stats import Judgments, by_category, head_to_head, sign_test
from evalsite.stats.bootstrap import draw_counts, resample_sums

from .simulate import candidate_vs_reference, judgments, true_win_rate


def hand_made():
    # Reference 0, candidates 1 and 2; a/b orders mixed on purpose. From candidate 1's side:
    # prompt 0: win, win, tie(both-bad); prompt 1: loss, tie, win; prompt 2: win. -> 4 wins, 2 ties, 1 loss.
    return judgments(
        system_a=[1, 0, 1, 0, 1, 1, 0, 2, 0, 1],
        system_b=[0, 1, 0, 1, 0, 0, 1, 0, 2, 2],
        outcome=[1.0, 0.0, 0.5, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 0.5],
        both_bad=[False, False, True, False, False, False, False, False, False, False],
        prompt=[0, 0, 0, 1, 1, 1, 2, 0, 1, 2],
        strength=[2.0, 1.0, 0.0, 1.0, 0.0, np.nan, 2.0, 1.0, 1.0, 0.0],
        category=[0, 0, 0, 1, 1, 1, 1, 0, 1, 1],
    )


def test_counts_rates_and_win_or_tie_of_each_candidate_against_the_reference():
    first, second = head_to_head(hand_made(), reference=0, rounds=200)
    assert (first.candidate, first.n, first.wins, first.ties, first.losses) == (1, 7, 4, 2, 1)
    assert first.win.rate == pytest.approx(4 / 7)
    assert first.tie.rate == pytest.approx(2 / 7)
    assert first.loss.rate == pytest.approx(1 / 7)
    assert first.win_or_tie.rate == pytest.approx(6 / 7)
    assert first.preference.rate == pytest.approx(5 / 7)
    # Judgments between two candidates (the last one) do not count against the reference.
    assert (second.candidate, second.n, second.wins, second.ties, second.losses) == (2, 2, 1, 0, 1)


def test_both_bad_counts_as_a_tie_and_is_also_reported_alone():
    first = head_to_head(hand_made(), reference=0, rounds=50)[0]
    assert first.both_bad == 1
    assert first.ties == 2
    assert first.both_bad_rate.rate == pytest.approx(1 / 7)


def test_strength_is_the_mean_signed_preference_over_judgments_where_it_was_collected():
    first = head_to_head(hand_made(), reference=0, rounds=50)[0]
    # +2 (win), +1 (a=0 lost -> candidate won), 0 (tie), +1 ... prompt 1: -1 (a=0 won), 0 (tie), nan; prompt 2: +2
    assert first.strength.n == 6
    assert first.strength.mean == pytest.approx((2 + 1 + 0 - 1 + 0 + 2) / 6)


def test_strength_is_absent_when_the_study_did_not_collect_it():
    j = candidate_vs_reference(np.random.default_rng(0), n_prompts=20, per_prompt=3, p_win=0.6)
    assert head_to_head(j, reference=0, rounds=50)[0].strength is None


def test_sign_test_uses_the_decisive_judgments():
    first = head_to_head(hand_made(), reference=0, rounds=50)[0]
    assert first.sign_test == sign_test(4, 1)


def test_each_rate_carries_a_wilson_and_a_cluster_bootstrap_interval_around_it():
    j = candidate_vs_reference(np.random.default_rng(1), n_prompts=100, per_prompt=4, p_win=0.6, p_tie=0.2)
    result = head_to_head(j, reference=0, rounds=500)[0]
    for prop in (result.win, result.tie, result.loss, result.win_or_tie, result.preference):
        assert prop.wilson.low < prop.rate < prop.wilson.high
        assert prop.bootstrap.low <= prop.rate <= prop.bootstrap.high
        assert prop.bootstrap.method == "cluster-bootstrap-percentile"


def test_bootstrap_is_reproducible_with_its_seed_and_changes_with_another():
    j = candidate_vs_reference(np.random.default_rng(2), n_prompts=50, per_prompt=3, p_win=0.55)
    one = head_to_head(j, reference=0, rounds=300, seed=5)[0].win.bootstrap
    again = head_to_head(j, reference=0, rounds=300, seed=5)[0].win.bootstrap
    other = head_to_head(j, reference=0, rounds=300, seed=6)[0].win.bootstrap
    assert one == again
    assert one != other


def test_resampling_draws_whole_prompts_with_replacement():
    counts = draw_counts(30, rounds=400, seed=1)
    assert counts.shape == (400, 30)
    assert np.all(counts.sum(axis=1) == 30)
    # Each prompt is drawn Binomial(30, 1/30) times: mean 1, variance 29/30.
    assert counts.mean() == pytest.approx(1.0)
    assert counts.var() == pytest.approx(29 / 30, rel=0.05)
    per_prompt = np.arange(60.0).reshape(30, 2)
    assert np.allclose(resample_sums(per_prompt, rounds=400, seed=1), counts @ per_prompt)


def test_resampling_gives_the_same_draws_however_many_rounds_fit_in_memory(monkeypatch):
    per_prompt = np.random.default_rng(0).random((50, 3))
    whole = resample_sums(per_prompt, rounds=64, seed=9)
    monkeypatch.setattr("evalsite.stats.bootstrap._CHUNK_CELLS", 50 * 5)
    # The draws are identical; the products may differ in the last bit, as BLAS sums a 5-row block in
    # another order than a 64-row one.
    chunks = [draw_counts(50, 64, 9, start, min(64, start + 5)) for start in range(0, 64, 5)]
    assert np.array_equal(np.vstack(chunks), draw_counts(50, 64, 9))
    assert np.allclose(resample_sums(per_prompt, rounds=64, seed=9), whole, rtol=1e-12, atol=0)


def test_cluster_bootstrap_interval_covers_the_true_rate_in_93_to_97_percent_of_simulated_studies():
    # Correlated judgments: each prompt has its own win probability, judged by 5 raters.
    p_win, p_tie, sd = 0.6, 0.15, 1.0
    truth = true_win_rate(p_win, p_tie, sd)
    rng = np.random.default_rng(2024)
    covered, wilson_covered = [], []
    for study in range(1000):
        j = candidate_vs_reference(rng, n_prompts=80, per_prompt=5, p_win=p_win, p_tie=p_tie, prompt_sd=sd)
        win = head_to_head(j, reference=0, rounds=200, seed=study)[0].win
        covered.append(win.bootstrap.contains(truth))
        wilson_covered.append(win.wilson.contains(truth))
    coverage = np.mean(covered)
    assert 0.93 <= coverage <= 0.97, coverage
    # The reason for the cluster bootstrap: Wilson treats the 5 judgments of a prompt as independent.
    assert np.mean(wilson_covered) < 0.92


def test_by_category_splits_counts_and_gives_wilson_intervals():
    rows = by_category(hand_made(), reference=0)
    table = {(r.category, r.candidate): (r.wins, r.ties, r.losses, r.n_prompts) for r in rows}
    assert table == {(0, 1): (2, 1, 0, 1), (1, 1): (2, 1, 1, 2), (0, 2): (1, 0, 0, 1), (1, 2): (0, 0, 1, 1)}
    row = next(r for r in rows if (r.category, r.candidate) == (1, 1))
    assert row.win_or_tie.rate == pytest.approx(3 / 4)
    assert row.win.wilson.low < 0.5 < row.win.wilson.high
    assert row.win.bootstrap is None


def test_no_judgments_give_no_head_to_head_and_no_categories():
    empty = judgments(system_a=[], system_b=[], outcome=[], prompt=[], category=[])
    assert head_to_head(empty, reference=0) == []
    assert by_category(empty, reference=0) == []


def test_all_ties_give_zero_win_rate_full_win_or_tie_and_p_one():
    j = judgments(system_a=[0, 1, 0, 1], system_b=[1, 0, 1, 0], outcome=[0.5] * 4, prompt=[0, 0, 1, 2])
    result = head_to_head(j, reference=0, rounds=100)[0]
    assert (result.win.rate, result.tie.rate, result.win_or_tie.rate) == (0.0, 1.0, 1.0)
    assert result.preference.rate == 0.5
    assert result.sign_test.p_value == 1.0
    assert result.win.bootstrap.low == result.win.bootstrap.high == 0.0


def test_a_candidate_without_a_win_has_rate_zero_and_a_proper_wilson_upper_bound():
    j = judgments(system_a=[1] * 6, system_b=[0] * 6, outcome=[0.0] * 6, prompt=[0, 1, 2, 3, 4, 5])
    result = head_to_head(j, reference=0, rounds=100)[0]
    assert result.win.rate == 0.0
    assert result.win.wilson.low == 0.0 and 0.3 < result.win.wilson.high < 0.45
    assert not math.isnan(result.sign_test.p_value)


def test_swapping_a_and_b_with_the_outcome_changes_nothing():
    j = hand_made()
    swapped = Judgments(system_a=j.system_b, system_b=j.system_a, outcome=1 - j.outcome, prompt=j.prompt,
                        both_bad=j.both_bad, strength=j.strength, category=j.category)
    assert head_to_head(j, reference=0, rounds=100) == head_to_head(swapped, reference=0, rounds=100)
