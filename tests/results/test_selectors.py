"""Reading a study's judgments into the statistics' arrays, and the version that keys the cache."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evalsite.results import selectors
from evalsite.stats import markdown_style
from evalsite.studies.models import Comparison, Response, Study, System
from evalsite.studies.services import comparison_mark_gold, comparisons_build
from raters.models import Judgment
from tests.factories import make_study_with_responses
from tests.results.conftest import judge, make_judged_study, make_rater, side_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_study(db):
    """Two prompts (categories science, general), a reference and one candidate, judgments spelled out."""
    study = make_study_with_responses(n_prompts=3, candidates=1, scale=Study.Scale.AB_TIE_BOTHBAD)
    Response.objects.filter(prompt__study=study, system__name="candidate-1").update(text="# H\n\n- a\n- b\n\n**x** long")
    comparisons_build(study=study)
    c0, c1, c2 = Comparison.objects.filter(study=study).select_related(
        "response_a__system", "response_b__system").order_by("prompt__position")
    comparison_mark_gold(comparison=c2, expected="a")
    c2.refresh_from_db()
    r = [make_rater(study, i) for i in range(4)]
    cand0, ref0 = side_of(c0, "candidate-1"), side_of(c0, "reference")
    cand1 = side_of(c1, "candidate-1")
    judge(c0, r[0], cand0, left_is_a=True)
    judge(c0, r[1], ref0, left_is_a=False)
    judge(c0, r[2], "tie", left_is_a=False)
    judge(c1, r[0], "both_bad", left_is_a=True)
    judge(c1, r[1], cand1, left_is_a=False, excluded=True, excluded_reason="blocked")
    judge(c2, r[3], "a")  # gold
    return study


def test_gold_is_never_read_and_excluded_only_on_request(small_study):
    default = selectors.study_judgments(study=small_study)
    assert len(default.judgments) == 4
    with_excluded = selectors.study_judgments(study=small_study, include_excluded=True)
    assert len(with_excluded.judgments) == 5
    gold = Comparison.objects.get(study=small_study, is_gold=True)
    assert gold.pk not in set(with_excluded.judgments.item.tolist())


def test_arrays_follow_the_comparisons_a_and_b_and_the_shown_sides(small_study):
    data = selectors.study_judgments(study=small_study, include_excluded=True)
    j = data.judgments
    names = [s.name for s in data.systems]
    assert names == ["reference", "candidate-1"] and data.reference == 0
    stored = {jd.pk: jd for jd in Judgment.objects.filter(comparison__study=small_study, is_gold=False)
              .select_related("comparison__response_a__system", "comparison__response_b__system", "assignment")}
    # Rows come back in an unspecified order; match them by (comparison, rater), which is unique.
    by_key = {(jd.comparison_id, jd.rater_id): jd for jd in stored.values()}
    for i in range(len(j)):
        jd = by_key[(int(j.item[i]), int(j.rater[i]))]
        comparison = jd.comparison
        assert names[j.system_a[i]] == comparison.response_a.system.name
        assert names[j.system_b[i]] == comparison.response_b.system.name
        assert j.outcome[i] == {"a": 1.0, "b": 0.0, "tie": 0.5}[jd.winner]
        assert bool(j.both_bad[i]) == (jd.choice == "both_bad")
        assert j.prompt[i] == comparison.prompt_id
        if jd.choice in ("left", "right"):  # the side is derived exactly where a statistic reads it
            assert bool(j.left_is_a[i]) == jd.assignment.left_is_a
    assert j.strength is None  # the study did not ask for strength
    assert data.categories == ["general", "science"]
    assert {data.categories[c] for c in j.category} == {"general", "science"}


def test_style_features_are_computed_once_per_response_not_per_judgment(small_study, monkeypatch):
    calls = []

    def counting(text, length=None):
        calls.append(text)
        return markdown_style(text, length)

    monkeypatch.setattr("evalsite.stats.markdown_style", counting)
    data = selectors.study_judgments(study=small_study, include_excluded=True)
    assert len(data.judgments) == 5
    assert len(calls) == 4  # two judged comparisons, two responses each
    again = selectors.study_judgments(study=small_study, include_excluded=True)
    assert len(calls) == 4  # kept: a judged response's text never changes
    assert np.array_equal(again.judgments.style_a, data.judgments.style_a)
    j = data.judgments
    candidate = [s.index for s in data.systems if s.name == "candidate-1"][0]
    style_of_candidate = np.where((j.system_a == candidate)[:, None], j.style_a, j.style_b)
    assert (style_of_candidate[:, 1:] == [1.0, 2.0, 1.0]).all()  # one header, two list items, one bold


def test_strength_is_signed_toward_the_winner_and_zero_for_ties():
    study = make_judged_study(n_prompts=5, candidates=1, scale=Study.Scale.AB_TIE_STRENGTH, excluded_rater=False,
                              gold=False)
    j = selectors.study_judgments(study=study).judgments
    stored = list(Judgment.objects.filter(comparison__study=study).values_list("strength", flat=True))
    assert set(np.unique(j.strength[j.outcome == 0.5])) == {0.0}
    assert sorted(j.strength[j.outcome != 0.5].tolist()) == sorted(
        {"slightly": 1.0, "much": 2.0}[s] for s in stored if s)


def test_reading_takes_the_same_number_of_queries_whatever_the_number_of_judgments():
    def queries(study):
        with CaptureQueriesContext(connection) as ctx:
            selectors.study_judgments(study=study, include_excluded=True)
        return len(ctx.captured_queries)

    small = make_judged_study(n_prompts=4, candidates=1, raters=3, k=2)
    large = make_judged_study(n_prompts=20, candidates=2, raters=8, k=4)
    assert Judgment.objects.filter(comparison__study=large).count() > 5 * Judgment.objects.filter(
        comparison__study=small).count()
    assert queries(small) == queries(large)


def test_the_version_moves_with_new_judgments_exclusions_and_category_imports(small_study):
    from evalsite.studies.services import prompts_import
    from raters.services import rater_block, rater_unblock

    versions = [selectors.study_version(study=small_study)]
    comparison = Comparison.objects.filter(study=small_study, is_gold=False).select_related(
        "response_a__system", "response_b__system").first()
    judge(comparison, make_rater(small_study, 50), "a")
    versions.append(selectors.study_version(study=small_study))
    rater = Judgment.objects.filter(comparison__study=small_study, excluded=False, is_gold=False).first().rater
    rater_block(rater=rater, reason="inattentive")
    versions.append(selectors.study_version(study=small_study))
    prompt = small_study.prompts.first()
    line = f'{{"id": "{prompt.external_id}", "prompt": "{prompt.text}", "category": "other"}}\n'
    prompts_import(study=small_study, data=line.encode(), filename="cats.jsonl", replace=True)
    versions.append(selectors.study_version(study=small_study))
    assert len(set(versions)) == len(versions)
    # Blocking a second rater instead of the first is a different state, with a different version.
    rater_unblock(rater=rater)
    other = Judgment.objects.filter(comparison__study=small_study, is_gold=False).exclude(rater=rater).first().rater
    rater_block(rater=other, reason="inattentive")
    assert selectors.study_version(study=small_study) not in versions


def test_the_version_reads_a_fixed_number_of_rows_not_the_judgments(small_study, django_assert_num_queries):
    with django_assert_num_queries(1) as captured:
        version = selectors.study_version(study=small_study)
    assert Judgment._meta.db_table not in captured.captured_queries[0]["sql"]
    assert len(version) == 10


def test_a_change_made_around_the_counters_shows_after_the_maximum_age(small_study, monkeypatch):
    first = selectors.study_results(study=small_study)
    # An edit the version cannot see (no service involved, rater untouched): served from the cache...
    Judgment.objects.filter(comparison__study=small_study, is_gold=False, excluded=False).update(excluded=True)
    assert selectors.study_results(study=small_study).from_cache
    # ...until the results are older than the maximum age.
    monkeypatch.setattr(selectors, "MAX_AGE_SECONDS", 0)
    later = selectors.study_results(study=small_study)
    assert not later.from_cache and later.n_used == 0 < first.n_used


def test_counts_split_gold_excluded_and_counted(small_study):
    for include_excluded in (False, True):
        counts = selectors.study_judgments(study=small_study, include_excluded=include_excluded).counts
        assert (counts.total, counts.gold, counts.excluded, counts.counted) == (6, 1, 1, 4)


def test_results_of_a_study_without_reference_rate_all_systems():
    study = make_judged_study(candidates=2, metadata=False)
    System.objects.filter(study=study, role=System.Role.REFERENCE).update(role=System.Role.CANDIDATE)
    results = selectors.study_results(study=study)
    assert results.summary.reference is None and results.summary.head_to_head == []
    assert len(results.summary.bradley_terry.ratings) == 3 and results.summary.bradley_terry.anchor == "mean"
    assert results.scaling == []


def test_scaling_series_need_two_candidates_with_a_number_and_pick_a_log_axis_for_wide_ranges():
    study = make_judged_study(candidates=3)
    System.objects.filter(study=study, name="candidate-3").update(metadata={"params_b": 70, "note": "x",
                                                                            "flag": True})
    series = {s.key: s for s in selectors.study_results(study=study).scaling}
    assert set(series) == {"params_b", "imitation_tokens_m"}
    assert series["params_b"].log_scale  # 7 to 70
    assert not series["imitation_tokens_m"].log_scale  # 50 to 100
    assert [p.name for p in series["imitation_tokens_m"].points] == ["candidate-1", "candidate-2"]
    for p in series["params_b"].points:
        assert p.low <= p.win_or_tie <= p.high and p.method == "cluster-bootstrap-percentile"


def test_results_survive_pickling_as_a_shared_cache_stores_them(judged_study):
    import pickle

    results = selectors.study_results(study=judged_study)
    assert pickle.loads(pickle.dumps(results)).to_dict() == results.to_dict()
