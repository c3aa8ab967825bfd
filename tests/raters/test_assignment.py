"""The assignment engine: exactly k judgments per comparison, one lease per rater, breadth-first, idempotent."""
from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalsite.studies.models import Comparison, Study
from evalsite.studies.services import comparison_mark_gold
from raters.models import Assignment, Judgment, Rater
from raters.services import (
    NotFound,
    RatingError,
    assignment_claim,
    judgment_submit,
    rater_block,
    rater_enter,
    rater_unblock,
    reclaim_expired_leases,
)
from tests.raters.conftest import make_live_study, make_rater

pytestmark = pytest.mark.django_db


def rate_until_done(rater, choice="left", **kwargs) -> int:
    done = 0
    while not (claim := assignment_claim(rater=rater)).done:
        judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice=choice, **kwargs)
        done += 1
    return done


def test_every_comparison_ends_with_exactly_k_judgments_from_distinct_raters(live_study):
    for i in range(8):
        rate_until_done(make_rater(live_study, f"worker-{i}"))
    per_comparison = Counter(Judgment.objects.values_list("comparison_id", flat=True))
    assert set(per_comparison.values()) == {3} and len(per_comparison) == 10
    pairs = list(Judgment.objects.values_list("comparison_id", "rater_id"))
    assert len(pairs) == len(set(pairs))
    assert set(Comparison.objects.values_list("load", "judgments_done")) == {(3, 3)}


def test_reload_shows_the_same_comparison_in_the_same_order(live_study):
    rater = make_rater(live_study, "w1")
    first = assignment_claim(rater=rater).assignment
    again = assignment_claim(rater=rater).assignment
    assert (again.pk, again.left_is_a, again.comparison_id) == (first.pk, first.left_is_a, first.comparison_id)
    assert Assignment.objects.filter(rater=rater).count() == 1


def test_choice_is_breadth_first(live_study):
    claimed = [assignment_claim(rater=make_rater(live_study, f"w{i}")).assignment.comparison_id for i in range(10)]
    assert len(set(claimed)) == 10  # ten raters, ten different comparisons before any gets a second lease


def test_an_abandoned_lease_returns_to_the_pool_after_the_ttl(db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, lease_ttl_seconds=60)
    walker, other = make_rater(study, "walks-away"), make_rater(study, "other")
    assert not assignment_claim(rater=walker).done
    assert assignment_claim(rater=other).reason == "pool_empty"
    later = timezone.now() + timedelta(seconds=61)
    assert reclaim_expired_leases(now=later) == 1
    claim = assignment_claim(rater=other, now=later)
    assert not claim.done and Comparison.objects.get().load == 1


def test_a_late_submit_counts_when_the_comparison_still_has_room(db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, lease_ttl_seconds=60, min_seconds_per_judgment=0)
    rater = make_rater(study, "slow")
    assignment = assignment_claim(rater=rater).assignment
    reclaim_expired_leases(now=timezone.now() + timedelta(seconds=61))
    judgment_submit(rater=rater, assignment_id=assignment.pk, choice="tie")
    assert Comparison.objects.get().load == 1 and Judgment.objects.count() == 1


def test_a_late_submit_is_refused_when_someone_else_took_the_slot(db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, lease_ttl_seconds=60)
    slow, fast = make_rater(study, "slow"), make_rater(study, "fast")
    lapsed = assignment_claim(rater=slow).assignment
    later = timezone.now() + timedelta(seconds=61)
    taken = assignment_claim(rater=fast, now=later).assignment
    judgment_submit(rater=fast, assignment_id=taken.pk, choice="left", now=later)
    with pytest.raises(RatingError, match="given to someone else"):
        judgment_submit(rater=slow, assignment_id=lapsed.pk, choice="right", now=later)
    assert Judgment.objects.count() == 1 and Comparison.objects.get().load == 1


def test_second_submit_records_one_judgment_and_both_get_the_next_comparison(live_study):
    rater = make_rater(live_study, "double-clicker")
    assignment = assignment_claim(rater=rater).assignment
    first = judgment_submit(rater=rater, assignment_id=assignment.pk, choice="left")
    second = judgment_submit(rater=rater, assignment_id=assignment.pk, choice="right")
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.judgment.pk == first.judgment.pk and second.judgment.choice == "left"
    assert Judgment.objects.count() == 1 and Rater.objects.get().judgments_count == 1
    next_one = assignment_claim(rater=rater).assignment
    assert assignment_claim(rater=rater).assignment.pk == next_one.pk != assignment.pk


def test_a_rater_cannot_submit_someone_elses_assignment(live_study):
    owner, intruder = make_rater(live_study, "owner"), make_rater(live_study, "intruder")
    assignment = assignment_claim(rater=owner).assignment
    with pytest.raises(NotFound):
        judgment_submit(rater=intruder, assignment_id=assignment.pk, choice="left")
    assert not Judgment.objects.exists()


def test_choice_as_shown_resolves_to_the_comparisons_winner(live_study):
    rater = make_rater(live_study, "w")
    for choice in ("left", "right", "tie", "left"):
        assignment = assignment_claim(rater=rater).assignment
        judgment = judgment_submit(rater=rater, assignment_id=assignment.pk, choice=choice).judgment
        comparison = assignment.comparison
        left = comparison.response_a_id if assignment.left_is_a else comparison.response_b_id
        right = comparison.response_b_id if assignment.left_is_a else comparison.response_a_id
        expected = {"left": left, "right": right, "tie": None}[choice]
        assert judgment.winner_response_id == expected
        assert judgment.winner == {comparison.response_a_id: "a", comparison.response_b_id: "b", None: "tie"}[expected]


def test_each_side_is_shown_left_in_half_of_the_assignments(db):
    study = make_live_study(n_prompts=50, judgments_per_comparison=4, per_rater_cap=1000)
    for i in range(12):
        rate_until_done(make_rater(study, f"w{i}"))
    reference_left = sum(
        (a.comparison.response_a.system.is_reference == a.left_is_a)
        for a in Assignment.objects.select_related("comparison__response_a__system")
    )
    total = Assignment.objects.count()
    assert total == 200 and abs(reference_left / total - 0.5) <= 0.05


def test_per_rater_cap(db):
    study = make_live_study(n_prompts=10, per_rater_cap=4, min_seconds_per_judgment=0)
    rater = make_rater(study, "capped")
    assert rate_until_done(rater) == 4
    assert assignment_claim(rater=rater).reason == "cap_reached"


def test_a_paused_study_hands_out_nothing_new_but_keeps_an_open_lease(live_study):
    rater = make_rater(live_study, "w")
    assignment = assignment_claim(rater=rater).assignment
    Study.objects.filter(pk=live_study.pk).update(status=Study.Status.PAUSED)
    rater.study.refresh_from_db()
    assert assignment_claim(rater=rater).assignment.pk == assignment.pk
    judgment_submit(rater=rater, assignment_id=assignment.pk, choice="tie")
    assert assignment_claim(rater=rater).reason == "not_live"


@pytest.mark.parametrize(
    ("fields", "submit", "message"),
    [
        ({}, {"choice": "both_bad"}, "Choose Response A, Response B or tie."),
        ({}, {"choice": "A"}, "Choose Response A, Response B or tie."),
        ({"scale": Study.Scale.AB_TIE_STRENGTH}, {"choice": "left"}, "slightly or much better"),
        ({"reason_mode": Study.ReasonMode.REQUIRED}, {"choice": "left", "reason": "  "}, "give a short reason"),
        ({}, {"choice": "left", "reason": "x" * 2001}, "under 2000 characters"),
    ],
)
def test_invalid_choices_are_refused_and_nothing_is_recorded(db, fields, submit, message):
    study = make_live_study(n_prompts=2, **fields)
    rater = make_rater(study, "w")
    assignment = assignment_claim(rater=rater).assignment
    with pytest.raises(RatingError, match=message):
        judgment_submit(rater=rater, assignment_id=assignment.pk, **submit)
    assert not Judgment.objects.exists()
    assert Assignment.objects.get().status == Assignment.Status.LEASED


def test_both_bad_and_strength_where_the_scale_has_them(db):
    study = make_live_study(n_prompts=2, scale=Study.Scale.AB_TIE_BOTHBAD, min_seconds_per_judgment=0)
    rater = make_rater(study, "w")
    judgment = judgment_submit(rater=rater, assignment_id=assignment_claim(rater=rater).assignment.pk,
                               choice="both_bad").judgment
    assert (judgment.choice, judgment.winner) == ("both_bad", "tie")
    study = make_live_study(n_prompts=2, scale=Study.Scale.AB_TIE_STRENGTH, min_seconds_per_judgment=0)
    rater = make_rater(study, "w")
    judgment = judgment_submit(rater=rater, assignment_id=assignment_claim(rater=rater).assignment.pk,
                               choice="right", strength="much").judgment
    assert judgment.strength == "much"


def test_judgments_faster_than_the_minimum_are_flagged(db):
    study = make_live_study(n_prompts=3, min_seconds_per_judgment=10)
    rater = make_rater(study, "speedy")
    start = timezone.now()
    assignment = assignment_claim(rater=rater, now=start).assignment
    quick = judgment_submit(rater=rater, assignment_id=assignment.pk, choice="left", active_seconds=2,
                            now=start + timedelta(seconds=3)).judgment
    assert quick.too_fast and quick.server_seconds == 3 and quick.active_seconds == 2
    assignment = assignment_claim(rater=rater, now=start).assignment
    slow = judgment_submit(rater=rater, assignment_id=assignment.pk, choice="left", active_seconds=30,
                           now=start + timedelta(seconds=20)).judgment
    assert not slow.too_fast and slow.active_seconds == 20  # the page cannot claim more time than passed


def test_failing_gold_screens_a_rater_out_and_reopens_their_comparisons(db):
    study = make_live_study(n_prompts=8, judgments_per_comparison=1, gold_rate=0.0, gold_min_answered=2,
                            gold_accuracy_threshold=0.75, min_seconds_per_judgment=0, per_rater_cap=100)
    golds = list(Comparison.objects.filter(study=study)[:2])
    for gold in golds:
        comparison_mark_gold(comparison=gold, expected="a")
    rater = make_rater(study, "careless")
    rate_until_done(rater)  # the six ordinary comparisons
    Study.objects.filter(pk=study.pk).update(gold_rate=1.0)
    rater.study.refresh_from_db()
    while not (claim := assignment_claim(rater=rater)).done:
        expected_left = claim.assignment.left_is_a  # answer the opposite of the expected "a"
        judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice="right" if expected_left else "left")
    rater.refresh_from_db()
    assert rater.status == Rater.Status.SCREENED_OUT and "gold accuracy 0/2" in rater.status_reason
    assert claim.reason == "screened_out"
    assert Judgment.objects.filter(rater=rater, excluded=False).count() == 0
    assert set(Comparison.objects.filter(is_gold=False).values_list("load", flat=True)) == {0}
    assert set(Comparison.objects.filter(is_gold=False).values_list("judgments_done", flat=True)) == {1}


def test_blocking_keeps_judgments_flagged_and_unblocking_restores_them(live_study):
    rater = make_rater(live_study, "suspicious")
    for _ in range(3):
        judgment_submit(rater=rater, assignment_id=assignment_claim(rater=rater).assignment.pk, choice="left")
    open_lease = assignment_claim(rater=rater).assignment
    rater_block(rater=rater, reason="straight-lining")
    assert Judgment.objects.filter(rater=rater, excluded=True, excluded_reason="straight-lining").count() == 3
    assert Assignment.objects.get(pk=open_lease.pk).status == Assignment.Status.RELEASED
    assert sum(Comparison.objects.values_list("load", flat=True)) == 0
    assert assignment_claim(rater=Rater.objects.get(pk=rater.pk)).reason == "blocked"
    rater_unblock(rater=rater)
    assert Judgment.objects.filter(rater=rater, excluded=False).count() == 3
    assert sum(Comparison.objects.values_list("load", flat=True)) == 3


def test_returning_rater_is_the_same_rater(live_study):
    first = rater_enter(study=live_study, provider="prolific", external_id="PID1", provider_data={"SESSION_ID": "s1"})
    again = rater_enter(study=live_study, provider="prolific", external_id="PID1", provider_data={"SESSION_ID": "s2"})
    other = rater_enter(study=live_study, provider="mturk", external_id="PID1")
    assert first.pk == again.pk != other.pk and again.provider_data == {"SESSION_ID": "s2"}


def test_database_refuses_a_second_open_lease_and_a_second_judgment(live_study):
    rater = make_rater(live_study, "w")
    assignment = assignment_claim(rater=rater).assignment
    other = Comparison.objects.exclude(pk=assignment.comparison_id).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(comparison=other, rater=rater, left_is_a=True, leased_at=timezone.now(),
                                  expires_at=timezone.now())
    judgment_submit(rater=rater, assignment_id=assignment.pk, choice="left")
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(assignment=assignment, comparison=assignment.comparison, rater=rater,
                                choice="tie", winner="tie", server_seconds=1)


def test_a_screened_out_rater_cannot_be_blocked_and_so_never_revived_by_unblock(live_study):
    rater = make_rater(live_study, "screened")
    Rater.objects.filter(pk=rater.pk).update(status=Rater.Status.SCREENED_OUT)
    rater.refresh_from_db()
    with pytest.raises(RatingError, match="already screened out"):
        rater_block(rater=rater)
    assert Rater.objects.get(pk=rater.pk).status == Rater.Status.SCREENED_OUT


def test_a_comparison_raters_have_seen_cannot_become_gold(live_study):
    from evalsite.studies.services import StudyRuleError, comparison_unmark_gold

    rater = make_rater(live_study, "w")
    seen = assignment_claim(rater=rater).assignment.comparison
    with pytest.raises(StudyRuleError, match="raters have already been given it"):
        comparison_mark_gold(comparison=seen, expected="a")
    judgment_submit(rater=rater, assignment_id=assignment_claim(rater=rater).assignment.pk, choice="left")
    with pytest.raises(StudyRuleError, match="1 judgment"):
        comparison_mark_gold(comparison=Comparison.objects.get(pk=seen.pk), expected="a")
    fresh = Comparison.objects.filter(load=0).first()
    comparison_mark_gold(comparison=fresh, expected="tie")
    comparison_unmark_gold(comparison=fresh)
    assert not Comparison.objects.get(pk=fresh.pk).is_gold


def test_a_late_submit_while_holding_a_newer_lease_hands_back_that_lease(db):
    from raters.services import judgment_submit_and_claim

    study = make_live_study(n_prompts=3, judgments_per_comparison=1, lease_ttl_seconds=60, min_seconds_per_judgment=0)
    rater = make_rater(study, "two-tabs")
    old = assignment_claim(rater=rater).assignment
    later = timezone.now() + timedelta(seconds=61)
    newer = assignment_claim(rater=rater, now=later).assignment  # the old lease lapsed; a new one is leased
    assert newer.pk != old.pk
    submission, claim = judgment_submit_and_claim(rater=rater, assignment_id=old.pk, choice="left", now=later)
    assert submission.lapsed and claim.assignment.pk == newer.pk
    assert Assignment.objects.filter(rater=rater, status=Assignment.Status.LEASED).count() == 1


def test_a_claim_reclaims_abandoned_leases_itself_when_the_pool_looks_empty(db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, lease_ttl_seconds=60)
    assert not assignment_claim(rater=make_rater(study, "walks-away")).done
    other = make_rater(study, "other")
    assert assignment_claim(rater=other).reason == "pool_empty"
    claim = assignment_claim(rater=other, now=timezone.now() + timedelta(seconds=61))
    assert not claim.done and Comparison.objects.get().load == 1


def test_submit_and_claim_in_one_round_trip_records_once_and_leases_the_next(live_study):
    from raters.services import judgment_submit_and_claim

    rater = make_rater(live_study, "fast-loop")
    first = assignment_claim(rater=rater).assignment
    submission, claim = judgment_submit_and_claim(rater=rater, assignment_id=first.pk, choice="right")
    again, same_claim = judgment_submit_and_claim(rater=rater, assignment_id=first.pk, choice="left")
    assert not submission.duplicate and again.duplicate and same_claim.assignment.pk == claim.assignment.pk
    assert Judgment.objects.count() == 1 and claim.assignment.comparison_id != first.comparison_id
