"""What the results pages get: the hand-built study of test_stats stored in the database, read back through
raters.audits.selectors, gives the same answers; and the audits and findings CSV rows."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evalsite.stats.audits import VERDICTS
from evalsite.studies.models import Comparison, Prompt, Response, Study, System
from evalsite.studies.services import comparisons_build
from raters.audits.models import Audit, AuditFinding, AuditTarget
from raters.audits.selectors import (
    AUDIT_COLUMNS,
    FINDING_COLUMNS,
    audit_rows,
    finding_rows,
    study_audit_arrays,
    study_audit_report,
)
from raters.audits.services import audit_plan_save
from raters.models import Assignment, Judgment, Rater
from tests.audits.conftest import make_expert
from tests.audits.test_stats import AUDITS, CATEGORY, CROWD, EXPERT_A, MAJOR, REF

pytestmark = pytest.mark.django_db


def judge(comparison: Comparison, rater: Rater, winner: str, **fields) -> Judgment:
    now = timezone.now()
    assignment = Assignment.objects.create(comparison=comparison, rater=rater, left_is_a=True, status="submitted",
                                           leased_at=now, expires_at=now + timedelta(minutes=5), closed_at=now)
    choice = {"a": "left", "b": "right", "tie": "tie"}[winner]
    return Judgment.objects.create(assignment=assignment, comparison=comparison, rater=rater, choice=choice,
                                   winner=winner, server_seconds=12.0, **fields)


@pytest.fixture
def stored_study(db):
    """The hand-built study of test_stats, with noise that must not count: an excluded and a gold judgment,
    an unsubmitted audit, and a system nobody audited."""
    study = Study.objects.create(slug="hand-built", title="Hand built", judgments_per_comparison=3)
    reference = System.objects.create(study=study, name="the-reference", role="reference")
    candidate = System.objects.create(study=study, name="the-candidate", role="candidate")
    System.objects.create(study=study, name="unaudited", role="candidate")
    responses = {}
    for prompt_no in CROWD:
        prompt = Prompt.objects.create(study=study, external_id=f"p{prompt_no}", text=f"Question {prompt_no}?",
                                       category=["facts", "howto"][CATEGORY[prompt_no]], position=prompt_no)
        for system, offset in ((reference, 0), (candidate, 1)):
            responses[10 * prompt_no + offset] = Response.objects.create(
                prompt=prompt, system=system, text=f"Answer {prompt_no} from {offset}: it was 1889 in Paris.")
    comparisons_build(study=study)
    raters = [Rater.objects.create(study=study, provider="generic", external_id=f"r{i}") for i in range(5)]
    for prompt_no, outcomes in CROWD.items():
        ref, cand = responses[10 * prompt_no], responses[10 * prompt_no + 1]
        comparison = Comparison.objects.get(prompt__external_id=f"p{prompt_no}", response_a__in=[ref, cand],
                                            response_b__in=[ref, cand])
        cand_is_a = comparison.response_a_id == cand.pk
        for rater, outcome in zip(raters, outcomes, strict=False):
            winner = "tie" if outcome == 0.5 else ("a" if (outcome == 1) == cand_is_a else "b")
            judge(comparison, rater, winner)
        # Noise: an excluded judgment for the reference, a gold-flagged one for the reference.
        judge(comparison, raters[3], "b" if cand_is_a else "a", excluded=True, excluded_reason="too fast")
        judge(comparison, raters[4], "b" if cand_is_a else "a", is_gold=True, gold_passed=True)
    plan = audit_plan_save(study=study, selection="all", audits_per_response=2).plan
    experts = {EXPERT_A: make_expert("expert-a"), EXPERT_A + 1: make_expert("expert-b")}
    now = timezone.now()
    for response_id, _, expert, verdict, findings, _, _ in AUDITS:
        response = responses[response_id]
        target = AuditTarget.objects.get(plan=plan, response=response)
        audit = Audit.objects.create(plan=plan, target=target, expert=experts[expert], status="submitted",
                                     verdict=VERDICTS[verdict], leased_at=now, expires_at=now, submitted_at=now,
                                     closed_at=now, server_seconds=60)
        for k in range(findings):
            start = response.text.index("1889")
            AuditFinding.objects.create(audit=audit, start=start, end=start + 4, quote="1889",
                                        severity="major" if verdict == MAJOR and k == 0 else "minor",
                                        note=f"note {k}", correction="1887")
    # An audit still open (a draft with a finding) must not count anywhere.
    draft_target = AuditTarget.objects.get(plan=plan, response=responses[31])
    draft = Audit.objects.create(plan=plan, target=draft_target, expert=experts[EXPERT_A], leased_at=now,
                                 expires_at=now + timedelta(hours=1))
    AuditFinding.objects.create(audit=draft, start=0, end=6, quote="Answer", severity="major", note="n",
                                correction="c")
    return study


def test_arrays_carry_submitted_audits_and_counted_judgments_of_doubly_audited_comparisons(stored_study):
    arrays = study_audit_arrays(study=stored_study)
    assert arrays.systems == ["the-reference", "the-candidate", "unaudited"] and arrays.reference == REF
    assert arrays.categories == ["facts", "howto"]
    assert len(arrays.audits) == len(AUDITS) and int(arrays.audits.findings.sum()) == 11
    # All five comparisons have both responses audited (p3's reference only as "not checkable"): the stats
    # leave p3 out, the selector does not need to. Excluded judgments are not read.
    assert len(arrays.crowd.judgments) == sum(len(outcomes) for outcomes in CROWD.values())


def test_the_report_from_the_database_matches_the_hand_worked_answers(stored_study):
    result = study_audit_report(study=stored_study, rounds=200)
    report = result.report
    assert result.systems[report.contrast[0].candidate] == "the-candidate"
    (row,) = report.contrast
    assert (row.n_comparisons, row.n_judgments) == (4, 11)
    assert (row.crowd_win_or_tie.count, row.expert_win_or_tie.count) == (7, 2)
    assert (row.won_on_style.count, row.won_on_style.n) == (4, 5)
    assert (report.style_wins.with_major.count, report.style_wins.with_major.n) == (6, 9)
    ref, cand = report.systems
    assert (ref.major.count, ref.major.n, cand.major.count, cand.major.n) == (2, 4, 3, 5)
    assert [(r.category, r.won_on_style.count) for r in report.contrast_by_category] == [(0, 3), (1, 1)]
    assert result.to_dict()["systems"] == ["the-reference", "the-candidate", "unaudited"]


def test_a_study_without_audits_gives_an_empty_report(db):
    study = Study.objects.create(slug="nothing-yet", title="Nothing yet")
    result = study_audit_report(study=study, rounds=10)
    assert result.report.n_audits == 0 and result.report.contrast == [] and result.reference is None


def test_audits_csv_rows_one_per_submitted_audit(stored_study):
    rows = [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in audit_rows(study=stored_study)]
    assert len(rows) == len(AUDITS)
    assert {row["study"] for row in rows} == {"hand-built"}
    by_response = {}
    for row in rows:
        by_response.setdefault((row["prompt_id"], row["system"]), []).append(row)
    disputed = sorted(by_response[("p1", "the-candidate")], key=lambda r: r["expert"])
    assert [(r["expert"], r["verdict"], r["findings"], r["major_findings"], r["minor_findings"]) for r in disputed] == [
        ("expert-a", "major", 2, 1, 1), ("expert-b", "minor", 1, 0, 1)]
    assert disputed[0]["category"] == "facts" and disputed[0]["system_role"] == "candidate"


def test_findings_csv_rows_carry_offsets_and_the_quoted_text(stored_study):
    rows = [dict(zip(FINDING_COLUMNS, row, strict=True)) for row in finding_rows(study=stored_study)]
    assert len(rows) == 11  # the draft's finding is not exported
    texts = dict(Response.objects.values_list("pk", "text"))
    for row in rows:
        assert texts[row["response_id"]][row["start"]:row["end"]] == row["quote"] == "1889"
    assert {row["severity"] for row in rows if row["verdict"] == "major"} >= {"major"}


def test_plan_progress_counts_responses_once_however_many_audits_they_have(stored_study):
    from raters.audits.selectors import plan_experts, plan_progress

    plan = stored_study.audit_plan
    rows = {row.name: row for row in plan_progress(plan=plan)}
    ref, cand = rows["the-reference"], rows["the-candidate"]
    assert (ref.selected, ref.audits_done, ref.audits_needed) == (5, 6, 10)
    assert (cand.selected, cand.audits_done, cand.open_leases) == (5, 7, 1)  # the draft is open
    assert cand.verdicts == {"no_errors": 2, "minor": 1, "major": 3, "not_checkable": 1}
    assert rows["unaudited"].selected == 0
    experts = {row.username: row for row in plan_experts(plan=plan)}
    assert (experts["expert-a"].submitted, experts["expert-a"].open_now, experts["expert-a"].findings) == (8, 1, 7)
    assert (experts["expert-b"].submitted, experts["expert-b"].findings) == (5, 4)
