"""Findings and verdicts: offsets into the original text checked against the quote, drafts, the verdict rules,
and the marked text the page selects in."""
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from raters.audits.models import Audit, AuditFinding
from raters.audits.selectors import audit_view, text_segments
from raters.audits.services import (
    AuditError,
    audit_claim,
    audit_submit,
    finding_add,
    finding_delete,
    reclaim_expired_audit_leases,
)
from tests.audits.conftest import make_audit_study, make_expert

pytestmark = pytest.mark.django_db

TEXT = ("The Eiffel Tower was completed in 1899.\r\nIt is 330 m tall — taller than 🗼 replicas.\r\n"
        "Paris is the capital of France. Paris hosts it.")


@pytest.fixture
def open_audit(db):
    study, plan = make_audit_study(n_prompts=1, candidates=1, m=1)
    expert = make_expert("checker")
    audit = audit_claim(plan=plan, expert=expert).audit
    response = audit.target.response
    response.text = TEXT
    response.save(update_fields=["text"])
    return plan, expert, audit


def add(open_audit, **fields):
    plan, expert, audit = open_audit
    values = {"severity": "major", "note": "Completed in 1889.", "correction": "1889"}
    values.update(fields)
    return finding_add(plan=plan, expert=expert, audit_id=audit.pk, **values)


def test_a_finding_stores_offsets_into_the_original_text_and_the_text_they_cover(open_audit):
    start = TEXT.index("1899")
    finding = add(open_audit, start=start, end=start + 4, quote="1899")
    assert (finding.start, finding.end, finding.quote) == (start, start + 4, "1899")
    assert TEXT[finding.start:finding.end] == finding.quote


def test_offsets_count_code_points_after_an_emoji_and_crlf_breaks(open_audit):
    start = TEXT.index("replicas")
    finding = add(open_audit, start=start, end=start + 8, quote="replicas", severity="minor")
    assert finding.quote == "replicas"


def test_a_quote_that_does_not_match_the_offsets_is_refused(open_audit):
    start = TEXT.index("1899")
    with pytest.raises(AuditError, match="does not match the response"):
        add(open_audit, start=start, end=start + 4, quote="1889")
    with pytest.raises(AuditError, match="not inside the response"):
        add(open_audit, start=len(TEXT) - 2, end=len(TEXT) + 5, quote="it.")
    with pytest.raises(AuditError, match="not inside the response"):
        add(open_audit, start=10, end=None, quote="x")
    assert not AuditFinding.objects.exists()


def test_a_selection_across_a_crlf_break_matches_the_browsers_lf(open_audit):
    start, end = TEXT.index("1899."), TEXT.index("330")
    finding = add(open_audit, start=start, end=end, quote="1899.\nIt is ")  # the page shows CR LF as LF
    assert finding.quote == "1899.\r\nIt is" and finding.end == TEXT.index(" 330")  # trailing space trimmed


def test_white_space_at_the_ends_of_a_selection_is_left_out(open_audit):
    start = TEXT.index(" 1899")
    finding = add(open_audit, start=start, end=start + 6, quote=" 1899.")
    assert finding.quote == "1899." and finding.start == start + 1
    with pytest.raises(AuditError, match="not only white space"):
        add(open_audit, start=start, end=start + 1, quote=" ")


def test_a_quote_alone_is_found_when_it_occurs_once(open_audit):
    finding = add(open_audit, quote="taller than 🗼 replicas")
    assert TEXT[finding.start:finding.end] == "taller than 🗼 replicas"
    across = add(open_audit, quote="1899.\nIt", note="other", correction="x")  # pasted from the page: LF
    assert across.quote == "1899.\r\nIt"


def test_a_quote_alone_that_occurs_twice_or_never_is_refused_with_the_reason(open_audit):
    with pytest.raises(AuditError, match="appears 2 times"):
        add(open_audit, quote="Paris")
    with pytest.raises(AuditError, match="does not appear"):
        add(open_audit, quote="London")
    with pytest.raises(AuditError, match="Select the wrong passage"):
        add(open_audit, quote="  ")


@pytest.mark.parametrize("source", ["javascript:alert(1)", "ftp://example.org/x", "not a url", "http://"])
def test_a_source_must_be_an_http_or_https_address(open_audit, source):
    with pytest.raises(AuditError, match="http:// or https://"):
        add(open_audit, quote="330 m", source_url=source)


def test_a_valid_source_is_kept(open_audit):
    finding = add(open_audit, quote="330 m", source_url=" https://www.toureiffel.paris/en/the-monument/key-figures ")
    assert finding.source_url == "https://www.toureiffel.paris/en/the-monument/key-figures"


@pytest.mark.parametrize(("field", "message"), [("severity", "minor or major"), ("note", "what is wrong"),
                                                 ("correction", "correction")])
def test_severity_note_and_correction_are_required(open_audit, field, message):
    with pytest.raises(AuditError, match=message):
        add(open_audit, quote="330 m", **{field: ""})


def test_the_same_finding_sent_twice_is_stored_once(open_audit):
    first = add(open_audit, quote="330 m")
    again = add(open_audit, quote="330 m")
    assert first.pk == again.pk and AuditFinding.objects.count() == 1


def test_the_database_refuses_an_empty_span(open_audit):
    _, _, audit = open_audit
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditFinding.objects.create(audit=audit, start=5, end=5, quote="", severity="minor", note="n", correction="c")


def test_drafts_are_kept_and_shown_after_a_reload(open_audit):
    plan, expert, audit = open_audit
    add(open_audit, quote="1899")
    again = audit_claim(plan=plan, expert=expert).audit
    view = audit_view(again)
    assert [f.quote for f in view.findings] == ["1899"] and view.has_major


def test_adding_a_finding_renews_the_lease(open_audit):
    plan, expert, audit = open_audit
    later = timezone.now() + timedelta(seconds=plan.lease_ttl_seconds - 1)
    finding_add(plan=plan, expert=expert, audit_id=audit.pk, severity="minor", note="n", correction="c",
                quote="330 m", now=later)
    assert Audit.objects.get(pk=audit.pk).expires_at > later + timedelta(seconds=plan.lease_ttl_seconds - 5)


def test_a_finding_on_a_reclaimed_audit_takes_it_back_when_there_is_room(open_audit):
    plan, expert, audit = open_audit
    reclaim_expired_audit_leases(now=timezone.now() + timedelta(seconds=plan.lease_ttl_seconds + 1))
    add(open_audit, quote="330 m")
    audit.refresh_from_db()
    assert audit.status == Audit.Status.LEASED and audit.target.load == 1


def test_findings_cannot_change_once_submitted(open_audit):
    plan, expert, audit = open_audit
    finding = add(open_audit, quote="1899")
    audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="major")
    with pytest.raises(AuditError, match="already submitted"):
        add(open_audit, quote="330 m")
    with pytest.raises(AuditError, match="already submitted"):
        finding_delete(plan=plan, expert=expert, audit_id=audit.pk, finding_id=finding.pk)
    assert AuditFinding.objects.count() == 1


def test_a_draft_finding_can_be_deleted(open_audit):
    plan, expert, audit = open_audit
    finding = add(open_audit, quote="1899")
    finding_delete(plan=plan, expert=expert, audit_id=audit.pk, finding_id=finding.pk)
    finding_delete(plan=plan, expert=expert, audit_id=audit.pk, finding_id=finding.pk)  # gone: not an error
    assert not AuditFinding.objects.exists()


# --- verdicts -----------------------------------------------------------------------------------------------

def submit(open_audit, verdict):
    plan, expert, audit = open_audit
    return audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict=verdict)


@pytest.mark.parametrize("verdict", ["no_errors", "not_checkable"])
def test_no_errors_and_not_checkable_need_no_findings(open_audit, verdict):
    add(open_audit, quote="1899", severity="minor")
    with pytest.raises(AuditError, match="Delete it first"):
        submit(open_audit, verdict)
    plan, expert, audit = open_audit
    finding_delete(plan=plan, expert=expert, audit_id=audit.pk, finding_id=AuditFinding.objects.get().pk)
    assert submit(open_audit, verdict).audit.verdict == verdict


@pytest.mark.parametrize("verdict", ["minor", "major"])
def test_an_error_verdict_needs_a_flagged_passage(open_audit, verdict):
    with pytest.raises(AuditError, match="Flag at least one"):
        submit(open_audit, verdict)


def test_a_major_finding_makes_the_verdict_major(open_audit):
    add(open_audit, quote="1899", severity="major")
    with pytest.raises(AuditError, match="major error, so the verdict"):
        submit(open_audit, "minor")
    assert submit(open_audit, "major").audit.verdict == "major"


def test_minor_findings_may_add_up_to_a_major_verdict(open_audit):
    add(open_audit, quote="1899", severity="minor")
    assert submit(open_audit, "major").audit.verdict == "major"


def test_an_unknown_verdict_is_refused(open_audit):
    with pytest.raises(AuditError, match="Choose your verdict"):
        submit(open_audit, "meh")
    assert Audit.objects.get().status == Audit.Status.LEASED


def test_a_verdict_without_submit_is_refused_by_the_database(open_audit):
    _, _, audit = open_audit
    with pytest.raises(IntegrityError), transaction.atomic():
        Audit.objects.filter(pk=audit.pk).update(verdict="major")


# --- the marked text ------------------------------------------------------------------------------------------

def test_segments_cover_the_text_exactly_with_crlf_breaks_as_their_own_segments():
    findings = [AuditFinding(pk=1, start=4, end=10, severity="minor"), AuditFinding(pk=2, start=8, end=20, severity="major")]
    segments = text_segments(TEXT, findings)
    assert segments[0].start == 0 and segments[-1].end == len(TEXT)
    assert all(a.end == b.start for a, b in zip(segments, segments[1:], strict=False))
    for seg in segments:
        if seg.break_:
            assert TEXT[seg.start:seg.end] == "\r\n" and seg.text == "\n"
        else:
            assert TEXT[seg.start:seg.end] == seg.text and "\r" not in seg.text
    overlap = next(seg for seg in segments if seg.start == 8)
    assert overlap.findings == (1, 2) and overlap.severity == "major"


def test_segments_never_split_a_crlf_even_if_a_finding_ends_inside_it():
    text = "ab\r\ncd"
    segments = text_segments(text, [AuditFinding(pk=1, start=0, end=3, severity="minor")])
    assert [(s.start, s.end) for s in segments] == [(0, 2), (2, 4), (4, 6)]
