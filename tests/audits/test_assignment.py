"""The audit engine: m audits per selected response from distinct experts, one lease per expert, breadth-first,
leases that lapse, drafts that come back, idempotent submits; and the plan's selection."""
from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalsite.studies.models import Response, Study
from evalsite.studies.services import comparisons_build
from raters.audits.models import Audit, AuditFinding, AuditPlan, AuditTarget
from raters.audits.services import (
    AuditError,
    AuditPlanError,
    NotFound,
    audit_claim,
    audit_plan_save,
    audit_submit,
    audit_submit_and_claim,
    finding_add,
    reclaim_expired_audit_leases,
    sample_key,
)
from raters.models import Judgment
from raters.services import assignment_claim, judgment_submit
from tests.audits.conftest import make_audit_study, make_expert
from tests.factories import make_study_with_responses
from tests.raters.conftest import make_rater

pytestmark = pytest.mark.django_db


def audit_until_done(plan, expert, verdict="no_errors") -> list[int]:
    """Audit everything the queue gives this expert; the responses audited, in order."""
    seen = []
    while not (claim := audit_claim(plan=plan, expert=expert)).done:
        seen.append(claim.audit.target.response_id)
        audit_submit(plan=plan, expert=expert, audit_id=claim.audit.pk, verdict=verdict)
    return seen


def test_every_response_ends_with_exactly_m_audits_from_distinct_experts(db):
    study, plan = make_audit_study(n_prompts=5, candidates=1, m=2)
    experts = [make_expert(f"expert-{i}") for i in range(4)]
    for expert in experts:
        audited = audit_until_done(plan, expert)
        assert len(audited) == len(set(audited)), "an expert got the same response twice"
    per_response = Counter(Audit.objects.filter(status="submitted").values_list("target__response_id", flat=True))
    assert len(per_response) == 10 and set(per_response.values()) == {2}
    pairs = list(Audit.objects.values_list("target_id", "expert_id"))
    assert len(pairs) == len(set(pairs))
    assert set(AuditTarget.objects.values_list("load", "audits_done")) == {(2, 2)}


def test_an_expert_never_gets_a_response_twice_even_when_only_that_one_needs_audits(db):
    study, plan = make_audit_study(n_prompts=1, candidates=1, m=3)
    expert = make_expert("solo")
    assert len(audit_until_done(plan, expert)) == 2  # the two responses once each, though each needs three
    assert audit_claim(plan=plan, expert=expert).reason == "pool_empty"


def test_reload_shows_the_same_response(db):
    study, plan = make_audit_study()
    expert = make_expert("reloader")
    first = audit_claim(plan=plan, expert=expert).audit
    assert audit_claim(plan=plan, expert=expert).audit.pk == first.pk
    assert Audit.objects.filter(expert=expert).count() == 1


def test_one_open_lease_per_expert_per_plan_is_a_database_rule(db):
    study, plan = make_audit_study()
    expert = make_expert("greedy")
    first = audit_claim(plan=plan, expert=expert).audit
    other = AuditTarget.objects.exclude(pk=first.target_id).first()
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Audit.objects.create(plan=plan, target=other, expert=expert, leased_at=now, expires_at=now)


def test_the_same_expert_may_hold_one_lease_in_each_of_two_studies(db):
    _, plan_a = make_audit_study()
    _, plan_b = make_audit_study()
    expert = make_expert("two-studies")
    a, b = audit_claim(plan=plan_a, expert=expert).audit, audit_claim(plan=plan_b, expert=expert).audit
    assert a.target.plan_id == plan_a.pk and b.target.plan_id == plan_b.pk


def test_choice_is_breadth_first_and_mixes_the_systems(db):
    study, plan = make_audit_study(n_prompts=10, candidates=1, m=2)
    experts = [make_expert(f"e{i}") for i in range(20)]
    claimed = [audit_claim(plan=plan, expert=e).audit.target.response for e in experts]
    first_round = claimed[:20]
    # 20 responses, 20 experts: every response is opened once before any is opened twice.
    assert len({r.pk for r in first_round}) == 20
    # The order comes from the shuffle key, not from the systems: the first ten are not all one system's.
    systems = [r.system_id for r in claimed[:10]]
    assert len(set(systems)) == 2


def test_an_abandoned_lease_returns_to_the_pool_after_the_ttl(db):
    study, plan = make_audit_study(n_prompts=1, candidates=1, m=1)
    plan.lease_ttl_seconds = 60
    plan.save()
    walker, a, b = make_expert("walks-away"), make_expert("a"), make_expert("b")
    held = audit_claim(plan=plan, expert=walker).audit
    assert not audit_claim(plan=plan, expert=a).done  # the other response
    assert audit_claim(plan=plan, expert=b).reason == "pool_empty"
    later = timezone.now() + timedelta(seconds=61)
    claim = audit_claim(plan=plan, expert=b, now=later)  # the pool looks empty: lapsed leases are reclaimed
    assert claim.audit.target_id == held.target_id
    assert Audit.objects.get(pk=held.pk).status == Audit.Status.EXPIRED
    assert AuditTarget.objects.get(pk=held.target_id).load == 1


def test_reclaim_counts_what_it_returned(db):
    study, plan = make_audit_study(m=1)
    for i in range(3):
        audit_claim(plan=plan, expert=make_expert(f"x{i}"))
    later = timezone.now() + timedelta(seconds=plan.lease_ttl_seconds + 1)
    assert reclaim_expired_audit_leases(now=later) == 3
    assert reclaim_expired_audit_leases(now=later) == 0
    assert set(AuditTarget.objects.values_list("load", flat=True)) == {0}


def test_a_lapsed_lease_not_yet_reclaimed_is_renewed_for_its_expert(db):
    study, plan = make_audit_study(m=1)
    expert = make_expert("slow-reader")
    audit = audit_claim(plan=plan, expert=expert).audit
    later = timezone.now() + timedelta(seconds=plan.lease_ttl_seconds + 5)
    again = audit_claim(plan=plan, expert=expert, now=later).audit
    assert again.pk == audit.pk and Audit.objects.get(pk=audit.pk).expires_at > later


def test_a_reclaimed_audit_with_drafts_comes_back_to_its_expert_first(db):
    study, plan = make_audit_study(m=2)
    expert = make_expert("comes-back")
    audit = audit_claim(plan=plan, expert=expert).audit
    text = audit.target.response.text
    finding_add(plan=plan, expert=expert, audit_id=audit.pk, severity="minor", note="n", correction="c",
                quote=text[:5], start=0, end=5)
    later = timezone.now() + timedelta(seconds=plan.lease_ttl_seconds + 1)
    reclaim_expired_audit_leases(now=later)
    assert AuditTarget.objects.get(pk=audit.target_id).load == 0
    back = audit_claim(plan=plan, expert=expert, now=later).audit
    assert back.pk == audit.pk and back.status == Audit.Status.LEASED
    assert AuditFinding.objects.filter(audit=back).count() == 1
    assert AuditTarget.objects.get(pk=audit.target_id).load == 1


def test_a_late_submit_counts_when_the_response_still_needs_an_audit(db):
    study, plan = make_audit_study(n_prompts=1, m=1)
    expert = make_expert("late")
    audit = audit_claim(plan=plan, expert=expert).audit
    reclaim_expired_audit_leases(now=timezone.now() + timedelta(seconds=plan.lease_ttl_seconds + 1))
    submission = audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="no_errors")
    assert submission.lapsed and not submission.duplicate
    assert AuditTarget.objects.get(pk=audit.target_id).audits_done == 1


def test_a_late_submit_is_refused_when_another_expert_took_the_place(db):
    study, plan = make_audit_study(n_prompts=1, candidates=1, m=1)
    slow, fast = make_expert("slow"), make_expert("fast")
    audit = audit_claim(plan=plan, expert=slow).audit
    later = timezone.now() + timedelta(seconds=plan.lease_ttl_seconds + 1)
    reclaim_expired_audit_leases(now=later)
    audit_until_done(plan, fast)
    with pytest.raises(AuditError, match="other experts have audited it"):
        audit_submit(plan=plan, expert=slow, audit_id=audit.pk, verdict="no_errors")
    assert AuditTarget.objects.get(pk=audit.target_id).audits_done == 1


def test_a_second_submit_records_one_verdict(db):
    study, plan = make_audit_study()
    expert = make_expert("double-click")
    audit = audit_claim(plan=plan, expert=expert).audit
    first = audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="no_errors")
    again = audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="not_checkable")
    assert again.duplicate and again.audit.verdict == "no_errors" and first.audit.pk == again.audit.pk
    assert AuditTarget.objects.get(pk=audit.target_id).audits_done == 1


def test_submit_and_claim_leases_the_next_response_in_the_same_call(db):
    study, plan = make_audit_study()
    expert = make_expert("loop")
    audit = audit_claim(plan=plan, expert=expert).audit
    submission, claim = audit_submit_and_claim(plan=plan, expert=expert, audit_id=audit.pk, verdict="no_errors")
    assert not claim.done and claim.audit.pk != audit.pk
    assert Audit.objects.filter(expert=expert, status="leased").count() == 1


def test_an_expert_cannot_submit_another_experts_audit(db):
    study, plan = make_audit_study()
    owner, intruder = make_expert("owner"), make_expert("intruder")
    audit = audit_claim(plan=plan, expert=owner).audit
    with pytest.raises(NotFound):
        audit_submit(plan=plan, expert=intruder, audit_id=audit.pk, verdict="no_errors")
    _, other_plan = make_audit_study()
    with pytest.raises(NotFound):
        audit_submit(plan=other_plan, expert=owner, audit_id=audit.pk, verdict="no_errors")


def test_a_closed_plan_leases_nothing_new_but_lets_an_open_audit_finish(db):
    study, plan = make_audit_study()
    busy, newcomer = make_expert("busy"), make_expert("newcomer")
    audit = audit_claim(plan=plan, expert=busy).audit
    AuditPlan.objects.filter(pk=plan.pk).update(is_open=False)
    plan.refresh_from_db()
    assert audit_claim(plan=plan, expert=newcomer).reason == "closed"
    assert audit_claim(plan=plan, expert=busy).audit.pk == audit.pk
    _, claim = audit_submit_and_claim(plan=plan, expert=busy, audit_id=audit.pk, verdict="no_errors")
    assert claim.reason == "closed"


# --- the plan's selection ---------------------------------------------------------------------------------

def test_all_selects_every_response_once(db):
    study, plan = make_audit_study(n_prompts=4, candidates=2)
    assert AuditTarget.objects.filter(plan=plan).count() == 12
    result = audit_plan_save(study=study, selection="all", audits_per_response=1)
    assert (result.added, result.removed, result.selected, result.created) == (0, 0, 12, False)


def test_a_sample_is_the_same_n_prompts_for_every_system_and_fixed_by_its_seed(db):
    study = make_study_with_responses(n_prompts=20, candidates=2)
    plan = audit_plan_save(study=study, selection="sample", sample_size=5, sample_seed=7, audits_per_response=1).plan
    chosen = list(AuditTarget.objects.filter(plan=plan).values_list("response__system__name",
                                                                   "response__prompt__external_id"))
    per_system = Counter(system for system, _ in chosen)
    assert set(per_system.values()) == {5} and len(per_system) == 3
    prompts = {name: {p for s, p in chosen if s == name} for name in per_system}
    assert len({frozenset(p) for p in prompts.values()}) == 1, "systems were sampled on different prompts"
    expected = sorted((f"q{i}" for i in range(20)), key=lambda external_id: sample_key(7, external_id))[:5]
    assert next(iter(prompts.values())) == set(expected)
    assert AuditPlan.objects.get(pk=plan.pk).sample_seed == 7  # recorded


def test_a_larger_sample_extends_the_smaller_one(db):
    study = make_study_with_responses(n_prompts=20, candidates=1)
    plan = audit_plan_save(study=study, selection="sample", sample_size=3, sample_seed=11, audits_per_response=1).plan
    small = set(AuditTarget.objects.filter(plan=plan).values_list("response_id", flat=True))
    result = audit_plan_save(study=study, selection="sample", sample_size=6, audits_per_response=1)
    large = set(AuditTarget.objects.filter(plan=plan).values_list("response_id", flat=True))
    assert small < large and len(large) == 12 and result.added == 6 and result.removed == 0


def test_decided_selects_both_responses_of_comparisons_with_enough_counted_judgments(db):
    study = make_study_with_responses(n_prompts=3, candidates=1, judgments_per_comparison=2,
                                      min_seconds_per_judgment=0)
    comparisons_build(study=study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    study.refresh_from_db()
    raters = [make_rater(study, f"w{i}") for i in range(2)]
    for rater in raters:  # each rater judges one comparison: the first comparison they are given
        claim = assignment_claim(rater=rater)
        judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice="left")
    judged = Counter(Judgment.objects.values_list("comparison_id", flat=True))
    decided = [pk for pk, n in judged.items() if n >= 2]
    plan = audit_plan_save(study=study, selection="decided", audits_per_response=1).plan
    selected = set(AuditTarget.objects.filter(plan=plan).values_list("response_id", flat=True))
    expected = set()
    for comparison in study.comparisons.filter(pk__in=decided):
        expected |= {comparison.response_a_id, comparison.response_b_id}
    assert selected == expected
    # With a threshold of one judgment, every judged comparison is decided.
    audit_plan_save(study=study, selection="decided", decided_min_judgments=1, audits_per_response=1)
    assert AuditTarget.objects.filter(plan=plan).count() == 2 * len(judged)
    # Excluded judgments do not count.
    Judgment.objects.update(excluded=True, excluded_reason="test")
    result = audit_plan_save(study=study, selection="decided", decided_min_judgments=1, audits_per_response=1)
    assert result.selected == 0


def test_reselecting_keeps_responses_experts_have_opened(db):
    study, plan = make_audit_study(n_prompts=10, candidates=1, m=1)
    expert = make_expert("early-bird")
    opened = audit_claim(plan=plan, expert=expert).audit.target.response_id
    result = audit_plan_save(study=study, selection="sample", sample_size=1, sample_seed=1, audits_per_response=1)
    selected = set(AuditTarget.objects.filter(plan=plan).values_list("response_id", flat=True))
    assert opened in selected and len(selected) == result.selected
    # The sample is one prompt's two responses; the opened one is kept on top unless it is one of them.
    assert (len(selected), result.kept) in {(2, 0), (3, 1)}
    assert result.removed == 20 - len(selected)


def test_plan_rules_are_refused_with_the_field_named(db):
    study = make_study_with_responses(n_prompts=2)
    with pytest.raises(AuditPlanError) as refused:
        audit_plan_save(study=study, selection="sample", audits_per_response=0)
    assert set(refused.value.message_dict) == {"sample_size", "audits_per_response"}
    with pytest.raises(AuditPlanError, match="Unknown selection"):
        audit_plan_save(study=study, selection="most", audits_per_response=1)
    assert not AuditPlan.objects.exists()


def test_an_audited_response_cannot_be_deleted_alone_but_the_study_can(db):
    from django.db.models import RestrictedError

    study, plan = make_audit_study(n_prompts=1, m=1)
    audit = audit_claim(plan=plan, expert=make_expert("keeper")).audit
    with pytest.raises(RestrictedError):
        Response.objects.get(pk=audit.target.response_id).delete()
    study.delete()
    assert not Audit.objects.exists() and not AuditPlan.objects.exists()
