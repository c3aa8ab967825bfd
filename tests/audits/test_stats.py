"""evalsite.stats.audits against known answers: a hand-built study worked out on paper, the krippendorff package,
statsmodels' Wilson interval, and a simulation for the bootstrap interval of the mean."""
from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from evalsite.stats.audits import (
    MAJOR,
    MINOR,
    NO_ERRORS,
    NOT_CHECKABLE,
    Audits,
    CrowdJudgments,
    audit_report,
    crowd_vs_expert,
    crowd_vs_expert_by_category,
    expert_agreement,
    mean_with_bootstrap,
    response_facts,
    style_wins,
    system_factuality,
)
from evalsite.stats.data import Judgments

REF, CAND = 0, 1
EXPERT_A, EXPERT_B = 1, 2

# The hand-built study. Five prompts p1..p5; the reference's response to p<k> has id 10k, the candidate's 10k+1.
# (response, system, expert, verdict, findings, prompt, category)
AUDITS = [
    (10, REF, EXPERT_A, NO_ERRORS, 0, 1, 0), (10, REF, EXPERT_B, NO_ERRORS, 0, 1, 0),
    (11, CAND, EXPERT_A, MAJOR, 2, 1, 0), (11, CAND, EXPERT_B, MINOR, 1, 1, 0),
    (20, REF, EXPERT_A, MINOR, 1, 2, 0),
    (21, CAND, EXPERT_A, MAJOR, 1, 2, 0),
    (30, REF, EXPERT_A, NOT_CHECKABLE, 0, 3, 1),
    (31, CAND, EXPERT_B, NO_ERRORS, 0, 3, 1),
    (40, REF, EXPERT_B, MAJOR, 3, 4, 1),
    (41, CAND, EXPERT_A, NO_ERRORS, 0, 4, 1), (41, CAND, EXPERT_B, NOT_CHECKABLE, 0, 4, 1),
    (50, REF, EXPERT_A, MAJOR, 1, 5, 1),
    (51, CAND, EXPERT_A, MAJOR, 2, 5, 1),
]
# Crowd judgments, the candidate's outcome: 1 = candidate preferred, 0 = reference, 0.5 = tie. In p2 and p4 the
# comparison's response a is the candidate, elsewhere the reference: orientation must not matter.
CROWD = {1: [1, 1, 0.5], 2: [1, 0, 0], 3: [1, 1], 4: [0, 0.5, 1], 5: [1, 0]}
CANDIDATE_IS_A = {2, 4}
CATEGORY = {1: 0, 2: 0, 3: 1, 4: 1, 5: 1}


def hand_built_audits() -> Audits:
    columns = list(zip(*AUDITS, strict=True))
    return Audits(response=columns[0], system=columns[1], expert=columns[2], verdict=columns[3],
                  findings=columns[4], prompt=columns[5], category=columns[6])


def hand_built_crowd() -> CrowdJudgments:
    rows = []
    for prompt, outcomes in CROWD.items():
        ref, cand = 10 * prompt, 10 * prompt + 1
        for outcome in outcomes:
            if prompt in CANDIDATE_IS_A:
                rows.append((CAND, REF, outcome, prompt, cand, ref))
            else:
                rows.append((REF, CAND, 1 - outcome, prompt, ref, cand))
    a, b, outcome, prompt, ra, rb = (np.array(col) for col in zip(*rows, strict=True))
    judgments = Judgments(system_a=a, system_b=b, outcome=outcome, prompt=prompt,
                          category=np.array([CATEGORY[p] for p in prompt]))
    return CrowdJudgments(judgments=judgments, response_a=ra, response_b=rb)


# --- per response and per system -----------------------------------------------------------------------------

def test_response_facts_by_hand():
    facts = response_facts(hand_built_audits())
    assert list(facts.response) == [10, 11, 20, 21, 30, 31, 40, 41, 50, 51]
    assert list(facts.checked) == [True] * 4 + [False] + [True] * 5
    assert [int(r) for r in facts.response[facts.major]] == [11, 21, 40, 50, 51]
    assert facts.findings_mean[1] == 1.5 and math.isnan(facts.findings_mean[4])
    assert facts.findings_mean[7] == 0.0  # one audit checked it and found nothing; the other could not check
    majority = response_facts(hand_built_audits(), rule="majority")
    assert [int(r) for r in majority.response[majority.major]] == [21, 40, 50, 51]  # 11: one of two said major


def test_per_system_share_with_a_major_error_and_mean_findings_by_hand():
    ref, cand = system_factuality(response_facts(hand_built_audits()), rounds=200)
    assert (ref.n_responses, ref.n_checked, ref.n_audits) == (5, 4, 6)
    assert (ref.major.count, ref.major.n, ref.major.rate) == (2, 4, 0.5)
    assert ref.findings.mean == pytest.approx((0 + 1 + 3 + 1) / 4)
    assert (ref.not_checkable.count, ref.not_checkable.n) == (1, 5)
    assert (cand.major.count, cand.major.n) == (3, 5)
    assert cand.findings.mean == pytest.approx((1.5 + 1 + 0 + 0 + 2) / 5)
    low, high = proportion_confint(3, 5, alpha=0.05, method="wilson")
    assert (cand.major.wilson.low, cand.major.wilson.high) == pytest.approx((low, high), abs=1e-12)
    assert cand.findings.interval.low <= cand.findings.mean <= cand.findings.interval.high
    majority = system_factuality(response_facts(hand_built_audits(), rule="majority"), rounds=50)
    assert (majority[1].major.count, majority[1].major.n) == (2, 5)


def test_bootstrap_interval_of_a_mean_matches_the_normal_theory_one_on_a_large_sample():
    rng = np.random.default_rng(3)
    values = rng.poisson(1.3, size=4000).astype(float)
    result = mean_with_bootstrap(values, rounds=1000, seed=9)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values))
    assert result.interval.low == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert result.interval.high == pytest.approx(values.mean() + half, abs=0.15 * half)


def test_bootstrap_interval_of_a_mean_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    truth, covered, trials = 0.8, 0, 300
    for trial in range(trials):
        values = rng.poisson(truth, size=120).astype(float)
        interval = mean_with_bootstrap(values, rounds=400, seed=trial).interval
        covered += interval.low <= truth <= interval.high
    assert 0.90 <= covered / trials <= 0.99


def test_a_mean_of_one_value_has_no_interval():
    result = mean_with_bootstrap(np.array([2.0]))
    assert result.mean == 2.0 and math.isnan(result.interval.low) and math.isnan(result.interval.high)


# --- agreement ---------------------------------------------------------------------------------------------------

def test_expert_agreement_by_hand_and_against_the_krippendorff_package():
    audits = hand_built_audits()
    result = expert_agreement(audits)
    assert (result.n_items, result.n_audits) == (3, 6)  # responses 10, 11 and 41 have two audits
    assert result.verdict_percent == pytest.approx(1 / 3) and result.verdict_pairs == 3
    matrix = np.full((3, 10), np.nan)  # experts x responses
    ids = sorted(set(audits.response.tolist()))
    for response, _, expert, verdict, *_ in AUDITS:
        matrix[expert, ids.index(response)] = verdict
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert result.verdict_alpha == pytest.approx(expected, abs=1e-12)
    # Major or not, over checking audits: only 10 (no, no) and 11 (major, not) have two.
    major = np.where(matrix == NOT_CHECKABLE, np.nan, (matrix == MAJOR).astype(float))
    major[np.isnan(matrix)] = np.nan
    assert result.major_alpha == pytest.approx(
        krippendorff.alpha(reliability_data=major, level_of_measurement="nominal"), abs=1e-12)
    assert result.major_percent == pytest.approx(0.5) and result.major_pairs == 2


def test_agreement_matches_the_package_on_a_larger_random_study():
    rng = np.random.default_rng(8)
    rows = []
    for response in range(200):
        truth = rng.choice(4, p=[0.4, 0.25, 0.25, 0.1])
        for expert in rng.choice(6, size=rng.integers(1, 4), replace=False):
            verdict = truth if rng.random() < 0.75 else rng.integers(0, 4)
            rows.append((response, 0, expert, verdict, 0))
    columns = list(zip(*rows, strict=True))
    audits = Audits(response=columns[0], system=columns[1], expert=columns[2], verdict=columns[3],
                    findings=columns[4])
    matrix = np.full((6, 200), np.nan)
    matrix[audits.expert, audits.response] = audits.verdict
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert expert_agreement(audits).verdict_alpha == pytest.approx(expected, abs=1e-12)


# --- the crowd-vs-expert contrast ---------------------------------------------------------------------------------

def test_contrast_on_the_hand_built_study():
    facts = response_facts(hand_built_audits())
    (row,) = crowd_vs_expert(hand_built_crowd(), facts, REF, rounds=300)
    # p3 is left out: its reference response was not checkable. p1, p2, p4, p5 remain.
    assert (row.candidate, row.reference, row.n_comparisons, row.n_judgments) == (CAND, REF, 4, 11)
    assert (row.crowd_win_or_tie.count, row.crowd_win_or_tie.n) == (7, 11)  # 3 + 1 + 2 + 1
    # Experts: p1 and p2 the candidate is worse (major error vs none), p4 better, p5 both major: a tie.
    assert (row.expert_win_or_tie.count, row.expert_win_or_tie.n) == (2, 4)
    assert (row.candidate_major.count, row.reference_major.count) == (3, 2)
    # The candidate's crowd wins: p1 two, p2 one, p4 one, p5 one; all but p4's went to a response with a
    # major error.
    assert (row.won_on_style.count, row.won_on_style.n) == (4, 5)
    assert row.won_on_style.rate == pytest.approx(0.8)
    # Where experts found the candidate worse (p1, p2), the crowd still gave it a win or tie 4 times in 6.
    assert (row.crowd_win_or_tie_when_worse.count, row.crowd_win_or_tie_when_worse.n) == (4, 6)
    low, high = proportion_confint(7, 11, alpha=0.05, method="wilson")
    assert (row.crowd_win_or_tie.wilson.low, row.crowd_win_or_tie.wilson.high) == pytest.approx((low, high))
    assert row.crowd_win_or_tie.bootstrap.low <= 7 / 11 <= row.crowd_win_or_tie.bootstrap.high


def test_won_on_style_share_of_all_crowd_wins_on_the_hand_built_study():
    result = style_wins(hand_built_crowd(), response_facts(hand_built_audits()), rounds=300)
    # Decisive judgments on p1, p2, p4, p5: 2 + 3 + 2 + 2 = 9. The winner had a major error: p1 both (11),
    # p2 one (21; the two reference wins went to 20, minor only), p4 one (40), p5 both (51 and 50).
    assert result.n_wins == 9
    assert (result.with_major.count, result.with_major.n) == (6, 9)
    # Over a response without one: p5's do not count (both had a major error).
    assert (result.over_accurate.count, result.over_accurate.n) == (4, 9)


def test_contrast_under_the_majority_rule_changes_with_the_disputed_response():
    facts = response_facts(hand_built_audits(), rule="majority")  # 11 no longer has a major error
    (row,) = crowd_vs_expert(hand_built_crowd(), facts, REF, rounds=0)
    assert (row.expert_win_or_tie.count, row.won_on_style.count) == (3, 2)
    assert row.crowd_win_or_tie.bootstrap is None


def test_contrast_by_category_on_the_hand_built_study():
    rows = crowd_vs_expert_by_category(hand_built_crowd(), response_facts(hand_built_audits()), REF)
    assert [(r.category, r.n_comparisons, r.n_judgments) for r in rows] == [(0, 2, 6), (1, 2, 5)]
    first, second = rows
    assert (first.crowd_win_or_tie.count, first.expert_win_or_tie.count, first.won_on_style.count) == (4, 0, 3)
    assert (second.crowd_win_or_tie.count, second.expert_win_or_tie.count, second.won_on_style.count) == (3, 2, 1)


def test_a_judgment_whose_system_disagrees_with_the_audits_is_refused():
    crowd = hand_built_crowd()
    swapped = CrowdJudgments(crowd.judgments, crowd.response_b, crowd.response_a)
    with pytest.raises(ValueError, match="system of response_a"):
        crowd_vs_expert(swapped, response_facts(hand_built_audits()), REF)


def test_nothing_audited_gives_empty_results_not_errors():
    empty = Audits(response=[], system=[], verdict=[], findings=[])
    report = audit_report(empty, hand_built_crowd(), REF, rounds=10)
    assert report.systems == [] and report.contrast == [] and report.style_wins.n_wins == 0
    assert math.isnan(report.agreement.verdict_alpha)
    assert report.to_dict()["style_wins"]["with_major"]["rate"] is None


def test_the_report_gathers_everything_and_is_json_ready():
    import json

    report = audit_report(hand_built_audits(), hand_built_crowd(), REF, rounds=100)
    data = report.to_dict()
    json.dumps(data)
    assert data["contrast"][0]["won_on_style"]["rate"] == pytest.approx(0.8)
    assert [s["system"] for s in data["systems"]] == [REF, CAND]
    assert data["n_audits"] == len(AUDITS) and data["n_responses"] == 10


@pytest.mark.parametrize(("field", "value", "message"), [
    ("verdict", [7], "verdict must be 0..3"),
    ("findings", [-1], "findings cannot be negative"),
    ("system", [0, 1], "system has 2 entries"),
    ("response", [1.5], "response must hold integers"),
])
def test_bad_audit_arrays_are_refused_with_the_position(field, value, message):
    fields = {"response": [1], "system": [0], "verdict": [0], "findings": [0], field: value}
    with pytest.raises(ValueError, match=message):
        Audits(**fields)


def test_audits_of_one_response_must_agree_on_its_system():
    with pytest.raises(ValueError, match="disagree on its system"):
        response_facts(Audits(response=[1, 1], system=[0, 1], verdict=[0, 0], findings=[0, 0]))
