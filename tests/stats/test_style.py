import numpy as np
import pytest
from scipy.special import expit

from evalsite.stats import Judgments, head_to_head, style_control
from evalsite.stats.bootstrap import draw_counts, percentile_interval
from evalsite.stats.data import compact
from evalsite.stats.style import _fit, normalized_differences

from .simulate import judgments

QUALITY_GAP = 0.4  # candidate minus reference, log-odds: the quality-only preference is sigma(0.4) = 0.599


def style_study(seed=0, n_prompts=600, per_prompt=4, length_effect=2.5, candidate_longer=2.0):
    """Candidate (1) vs reference (0). The longer response is preferred more, whatever the system, and the
    candidate tends to write longer answers. Headers, lists and bold vary but do not matter."""
    rng = np.random.default_rng(seed)
    n = n_prompts * per_prompt
    prompt = np.repeat(np.arange(n_prompts), per_prompt)
    # One response per (prompt, system), judged per_prompt times.
    ref_len = rng.lognormal(np.log(300), 0.6, n_prompts)
    cand_len = rng.lognormal(np.log(300 * candidate_longer), 0.6, n_prompts)
    other = rng.poisson(2.0, size=(n_prompts, 2, 3)).astype(float)
    cand_style = np.column_stack([cand_len, other[:, 0]])[prompt]
    ref_style = np.column_stack([ref_len, other[:, 1]])[prompt]
    d_len = normalized_differences(cand_style[:, 0], ref_style[:, 0])
    cand_wins = rng.random(n) < expit(QUALITY_GAP + length_effect * d_len)
    flip = rng.random(n) < 0.5  # which one is "a" does not matter
    a_style = np.where(flip[:, None], ref_style, cand_style)
    b_style = np.where(flip[:, None], cand_style, ref_style)
    outcome = np.where(flip, 1.0 - cand_wins, cand_wins.astype(float))
    return Judgments(system_a=np.where(flip, 0, 1), system_b=np.where(flip, 1, 0), outcome=outcome, prompt=prompt,
                     style_a=a_style, style_b=b_style)


def test_style_control_recovers_a_planted_length_effect():
    j = style_study()
    result = style_control(j, reference=0, rounds=500)
    coef = {f.feature: f for f in result.features}
    assert coef["length"].coefficient > 0.5 and coef["length"].interval.low > 0
    # beta is per rms-sized difference: the planted 2.5 per unit of (a - b) / (a + b + 1), times that rms.
    assert coef["length"].interval.contains(2.5 * coef["length"].scale)
    for name in ("headers", "lists", "bold"):
        assert coef[name].interval.contains(0.0), name
    (cand,) = result.candidates
    # Raw preference is inflated by length; the style-adjusted rate is the planted quality-only one.
    assert cand.raw > 0.7
    assert cand.adjusted == pytest.approx(expit(QUALITY_GAP), abs=0.03)
    assert cand.adjusted_interval.contains(expit(QUALITY_GAP))
    assert cand.style_effect == pytest.approx(cand.raw - cand.adjusted)
    assert cand.style_effect_interval.low > 0.08
    assert cand.mean_difference["length"] > 0.25
    # The raw rate is the head-to-head preference on the same judgments, with the same bootstrap draws.
    h2h = head_to_head(j, reference=0, rounds=500)[0]
    assert cand.raw == pytest.approx(h2h.preference.rate)
    assert cand.raw_interval.low == pytest.approx(h2h.preference.bootstrap.low)


def test_without_a_style_effect_the_adjusted_rate_stays_near_the_raw_one():
    result = style_control(style_study(seed=1, length_effect=0.0), reference=0, rounds=300)
    (cand,) = result.candidates
    assert cand.style_effect_interval.contains(0.0)
    assert cand.adjusted == pytest.approx(cand.raw, abs=0.03)


def test_style_ratings_are_anchored_at_the_reference_with_the_adjusted_rate_their_logistic():
    result = style_control(style_study(seed=2), reference=0, rounds=200)
    rating = {r.system: r for r in result.ratings}
    assert rating[0].rating == 0.0
    assert result.candidates[0].adjusted == pytest.approx(expit(rating[1].rating))


def test_one_step_bootstrap_intervals_agree_with_full_refits():
    j = style_study(seed=3, n_prompts=300)
    rounds = 200
    result = style_control(j, reference=0, rounds=rounds, seed=4, prior=0.01)
    # Full refits on prompt-resampled data with the same draws (and the same feature scale).
    d = normalized_differences(j.style_a, j.style_b)
    z = d / np.sqrt(np.mean(d * d, axis=0))
    _, prompt_index = compact(j.prompt)
    counts = draw_counts(int(prompt_index.max()) + 1, rounds, seed=4).astype(int)
    refits = []
    for row in counts:
        take = np.concatenate([np.flatnonzero(prompt_index == p).repeat(1) for p in np.repeat(np.arange(len(row)), row)])
        params, converged = _fit(j.system_a[take], j.system_b[take], z[take], j.outcome[take], 2, 0.01)
        assert converged
        refits.append(params)
    refits = np.array(refits)
    length_low, length_high = percentile_interval(refits[:, 2])
    gap_low, gap_high = percentile_interval(expit(refits[:, 1] - refits[:, 0]))
    length = result.features[0].interval
    adjusted = result.candidates[0].adjusted_interval
    width = length_high - length_low
    assert length.low == pytest.approx(length_low, abs=0.1 * width)
    assert length.high == pytest.approx(length_high, abs=0.1 * width)
    width = gap_high - gap_low
    assert adjusted.low == pytest.approx(gap_low, abs=0.1 * width)
    assert adjusted.high == pytest.approx(gap_high, abs=0.1 * width)


def test_swapping_a_and_b_with_outcome_and_style_changes_nothing():
    j = style_study(seed=5, n_prompts=100)
    swapped = Judgments(system_a=j.system_b, system_b=j.system_a, outcome=1 - j.outcome, prompt=j.prompt,
                        style_a=j.style_b, style_b=j.style_a)
    one, other = style_control(j, reference=0, rounds=100), style_control(swapped, reference=0, rounds=100)
    assert one.candidates[0].adjusted == pytest.approx(other.candidates[0].adjusted, abs=1e-9)
    assert [f.coefficient for f in one.features] == pytest.approx([f.coefficient for f in other.features], abs=1e-9)


def test_judgments_without_style_are_left_out_and_counted():
    j = style_study(seed=6, n_prompts=100)
    style_a = j.style_a.copy()
    style_a[:10, 0] = np.nan
    partial = Judgments(system_a=j.system_a, system_b=j.system_b, outcome=j.outcome, prompt=j.prompt,
                        style_a=style_a, style_b=j.style_b)
    result = style_control(partial, reference=0, rounds=50)
    assert (result.n_used, result.n_missing_style) == (len(j) - 10, 10)


def test_a_feature_that_never_differs_is_dropped_not_estimated():
    j = style_study(seed=7, n_prompts=100)
    style_a, style_b = j.style_a.copy(), j.style_b.copy()
    style_a[:, 3] = style_b[:, 3] = 0.0
    flat = Judgments(system_a=j.system_a, system_b=j.system_b, outcome=j.outcome, prompt=j.prompt,
                     style_a=style_a, style_b=style_b)
    result = style_control(flat, reference=0, rounds=50)
    assert result.dropped_features == ["bold"]
    assert [f.feature for f in result.features] == ["length", "headers", "lists"]


def test_when_no_feature_ever_differs_there_is_no_style_control_and_no_error():
    j = style_study(seed=7, n_prompts=40)
    same = np.ones_like(j.style_a)  # every response the same length, no Markdown: a case seen in real studies
    flat = Judgments(system_a=j.system_a, system_b=j.system_b, outcome=j.outcome, prompt=j.prompt,
                     style_a=same, style_b=same.copy())
    assert style_control(flat, reference=0, rounds=50) is None


def test_no_style_features_give_no_style_control():
    j = judgments(system_a=[0, 1], system_b=[1, 0], outcome=[1.0, 0.0], prompt=[0, 1])
    assert style_control(j, reference=0) is None


def test_normalized_difference_is_antisymmetric_and_bounded():
    a, b = np.array([0.0, 10.0, 1000.0]), np.array([0.0, 30.0, 10.0])
    d = normalized_differences(a, b)
    assert d.tolist() == pytest.approx([0.0, -20 / 41, 990 / 1011])
    assert np.array_equal(normalized_differences(b, a), -d)
