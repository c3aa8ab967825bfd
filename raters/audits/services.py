"""The audit engine: the researcher's audit plan, leasing responses to experts, findings, verdicts.

The rules mirror the rating engine's (raters.services, DESIGN.md "Assignment"): each selected response gets
m submitted audits, never two from one expert; an expert holds at most one open lease per study, and a
reload shows the same response; the next response is the least-audited one, then random (a shuffle key
fixed per target), so the queue is filled breadth-first and the systems' responses come interleaved at
random; leases not submitted in time return to the pool; a submit that arrives twice records one verdict.

The same mechanics: one transaction per claim or submit; on PostgreSQL the next target is read with
SELECT ... FOR UPDATE SKIP LOCKED through the (plan, load, shuffle) index, so concurrent experts never wait
on each other; on SQLite transactions are IMMEDIATE; the unique constraints in raters.audits.models are the
last line of defence. The code is not shared with the rating engine: the two work on different tables, and
the rating engine's round trip is tuned and benchmarked on its own (bench/).

Where audits differ, because an audit takes an expert many minutes and its notes are valuable:
- an expert's own lease is never taken from them while they still hold it: a lease past its time that the
  pool has not yet reclaimed is simply renewed when they come back, and every finding they add renews it;
- once reclaimed, their unsubmitted audit (with its draft findings) comes back to them first on their next
  claim, if the response still needs an audit; a late finding or verdict retakes it on the same condition.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone

from evalsite.studies.models import Comparison, Response, Study
from raters.audits.models import MAX_AUDITS_PER_RESPONSE, Audit, AuditFinding, AuditPlan, AuditTarget
from raters.models import Judgment

RECLAIM_BATCH = 20  # expired leases returned to the pool per claim that finds the pool empty
MAX_TEXT = 4000  # a note, a correction, a comment
MAX_URL = 2000
MAX_FINDINGS = 200  # per audit


class AuditError(Exception):
    """An expert's request that cannot be honoured; the message is safe to show to the expert."""


class NotFound(AuditError):
    pass


class AuditPlanError(ValidationError):
    """A plan the researcher asked for that breaks a rule; `message_dict` names the field."""


# --- the plan ---------------------------------------------------------------------------------------------

@dataclass
class PlanResult:
    plan: AuditPlan
    created: bool
    added: int  # responses newly selected
    removed: int  # responses no longer selected (none had been audited)
    kept: int  # responses the new selection leaves out but that are kept because experts audited them
    selected: int  # responses in the plan now


def sample_key(seed: int, prompt_external_id: str) -> str:
    """The sample's random order: a hash of the seed and the prompt's id in the researcher's file.

    It depends on the prompt only, so every system's response to a drawn prompt is drawn: the sample is paired,
    which is what the crowd-vs-expert contrast needs (both responses of a comparison audited). It uses the
    prompt's external id rather than a database key, so a study rebuilt from its file draws the same sample,
    and a larger N extends a smaller one."""
    return hashlib.sha256(f"{int(seed)}\x1f{prompt_external_id}".encode()).hexdigest()


def _select_all(study: Study) -> set[int]:
    return set(Response.objects.filter(prompt__study=study).values_list("pk", flat=True))


def _select_sample(study: Study, size: int, seed: int) -> set[int]:
    per_system: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for pk, system_id, external_id in (Response.objects.filter(prompt__study=study)
                                       .values_list("pk", "system_id", "prompt__external_id")):
        per_system[system_id].append((sample_key(seed, external_id), pk))
    return {pk for rows in per_system.values() for _, pk in sorted(rows)[:size]}


def decided_comparisons(*, study: Study, min_judgments: int):
    """Non-gold comparisons with at least `min_judgments` judgments that count (not excluded)."""
    return (Judgment.objects.filter(comparison__study=study, is_gold=False, excluded=False)
            .values("comparison").annotate(n=Count("pk")).filter(n__gte=min_judgments).values("comparison"))


def _select_decided(study: Study, min_judgments: int) -> set[int]:
    pairs = Comparison.objects.filter(pk__in=decided_comparisons(study=study, min_judgments=min_judgments))
    return {pk for pair in pairs.values_list("response_a_id", "response_b_id") for pk in pair}


def _validate_plan(study: Study, selection: str, sample_size: int | None, decided_min_judgments: int | None,
                   audits_per_response: int, lease_ttl_seconds: int) -> None:
    errors: dict[str, str] = {}
    if selection not in AuditPlan.Selection.values:
        errors["selection"] = f"Unknown selection {selection!r}; choose all, sample or decided."
    if selection == AuditPlan.Selection.SAMPLE and (sample_size is None or sample_size < 1):
        errors["sample_size"] = "A sample needs its size N: how many responses per system (at least 1)."
    if decided_min_judgments is not None and decided_min_judgments < 1:
        errors["decided_min_judgments"] = "A comparison needs at least 1 judgment to count as decided."
    if not 1 <= audits_per_response <= MAX_AUDITS_PER_RESPONSE:
        errors["audits_per_response"] = f"Experts per response must be between 1 and {MAX_AUDITS_PER_RESPONSE}."
    if lease_ttl_seconds < 60:
        errors["lease_ttl_seconds"] = "Give experts at least 60 seconds per response."
    if errors:
        raise AuditPlanError(errors)


def audit_plan_save(*, study: Study, selection: str, audits_per_response: int, sample_size: int | None = None,
                    sample_seed: int | None = None, decided_min_judgments: int | None = None,
                    lease_ttl_seconds: int = 3600, instructions: str = "", is_open: bool = True,
                    user: AbstractBaseUser | None = None) -> PlanResult:
    """Create or update the study's audit plan and apply its selection.

    The selection is recorded as the plan's targets. Applying it again (after more crowd judgments, more
    responses, or a new N) adds what it now includes and drops what it no longer includes, except responses
    experts have already opened or audited: those are kept, and counted in `kept`.
    """
    _validate_plan(study, selection, sample_size, decided_min_judgments, audits_per_response, lease_ttl_seconds)
    with transaction.atomic():
        plan = AuditPlan.objects.select_for_update().filter(study=study).first()
        created = plan is None
        if created:
            plan = AuditPlan(study=study, created_by=user)
        plan.selection = selection
        plan.sample_size = sample_size if selection == AuditPlan.Selection.SAMPLE else plan.sample_size
        if sample_seed is not None:
            plan.sample_seed = int(sample_seed)
        plan.decided_min_judgments = decided_min_judgments
        plan.audits_per_response = audits_per_response
        plan.lease_ttl_seconds = lease_ttl_seconds
        plan.instructions = instructions or ""
        plan.is_open = is_open
        plan.selected_at = timezone.now()
        plan.save()

        if selection == AuditPlan.Selection.ALL:
            wanted = _select_all(study)
        elif selection == AuditPlan.Selection.SAMPLE:
            wanted = _select_sample(study, int(sample_size), plan.sample_seed)
        else:
            wanted = _select_decided(study, decided_min_judgments or study.judgments_per_comparison)

        existing = set(plan.targets.values_list("response_id", flat=True))
        new = wanted - existing
        AuditTarget.objects.bulk_create(
            [AuditTarget(plan=plan, response_id=pk, selected_by=selection) for pk in sorted(new)], batch_size=1000)
        dropped = existing - wanted
        removed = 0
        if dropped:
            # Lock them first (a claim skips locked rows), then look for audits in a fresh statement, so a
            # response an expert is opening right now is kept rather than deleted under them.
            locked = list(AuditTarget.objects.select_for_update().filter(plan=plan, response_id__in=dropped)
                          .values_list("pk", flat=True))
            unaudited = (AuditTarget.objects.filter(pk__in=locked)
                         .filter(~Exists(Audit.objects.filter(target=OuterRef("pk")))))
            removed, _ = unaudited.delete()
        return PlanResult(plan=plan, created=created, added=len(new), removed=removed,
                          kept=len(dropped) - removed, selected=len(existing) + len(new) - removed)


# --- claiming ---------------------------------------------------------------------------------------------

@dataclass
class AuditClaim:
    """The expert's current audit, or why there is none (`reason`: see END_REASONS)."""

    audit: Audit | None
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.audit is None


END_REASONS = {
    "closed": "This audit is not open at the moment. Your work so far is saved.",
    "pool_empty": "There are no more responses for you to audit right now. Thank you!",
}


def audit_claim(*, plan: AuditPlan, expert: AbstractBaseUser, now: datetime | None = None) -> AuditClaim:
    """The expert's open audit in this plan if they have one, else a lease on the best next response."""
    with transaction.atomic():
        return _claim(plan, expert, now or timezone.now())


def _lease_end(plan: AuditPlan, now: datetime) -> datetime:
    return now + timedelta(seconds=plan.lease_ttl_seconds)


def _claim(plan: AuditPlan, expert: AbstractBaseUser, now: datetime, *, has_open_lease: bool = True) -> AuditClaim:
    if has_open_lease:
        current = _open_audit(plan, expert)
        if current is not None:
            if current.expires_at <= now:
                # Still counted in the target's load, so nobody else can have its place: give more time.
                current.expires_at = _lease_end(plan, now)
                Audit.objects.filter(pk=current.pk, status=Audit.Status.LEASED).update(expires_at=current.expires_at)
            return AuditClaim(current)
    if not plan.is_open:
        return AuditClaim(None, "closed")
    resumed = _resume_expired(plan, expert, now)
    if resumed is not None:
        return AuditClaim(resumed)
    target = _pick(plan, expert)
    if target is None and _reclaim(now, RECLAIM_BATCH):
        target = _pick(plan, expert)
    if target is None:
        return AuditClaim(None, "pool_empty")
    try:
        with transaction.atomic():  # a savepoint: a second tab claiming at the same moment loses cleanly
            audit = Audit.objects.create(plan=plan, target=target, expert=expert, leased_at=now,
                                         expires_at=_lease_end(plan, now))
            AuditTarget.objects.filter(pk=target.pk).update(load=F("load") + 1)
    except IntegrityError:
        current = _open_audit(plan, expert)
        return AuditClaim(current) if current is not None else AuditClaim(None, "pool_empty")
    audit.target = target
    return AuditClaim(audit)


def _open_audit(plan: AuditPlan, expert: AbstractBaseUser) -> Audit | None:
    return (Audit.objects.select_related("target").filter(plan=plan, expert=expert, status=Audit.Status.LEASED)
            .first())


def _resume_expired(plan: AuditPlan, expert: AbstractBaseUser, now: datetime) -> Audit | None:
    """The expert's own unsubmitted audit that lapsed, if its response still needs an audit: their notes
    are on it. The most recently closed first; a few at most, so the cost stays flat."""
    for audit in (Audit.objects.select_related("target").filter(plan=plan, expert=expert, status=Audit.Status.EXPIRED)
                  .order_by("-closed_at")[:5]):
        try:
            with transaction.atomic():
                if not AuditTarget.objects.filter(pk=audit.target_id, load__lt=plan.audits_per_response).update(
                        load=F("load") + 1):
                    continue
                Audit.objects.filter(pk=audit.pk, status=Audit.Status.EXPIRED).update(
                    status=Audit.Status.LEASED, expires_at=_lease_end(plan, now), closed_at=None)
        except IntegrityError:  # another tab just opened a lease for this expert
            return None
        audit.refresh_from_db()
        return audit
    return None


def _pick(plan: AuditPlan, expert: AbstractBaseUser) -> AuditTarget | None:
    """The least-audited target this expert has not opened, skipping rows another claim holds locked.

    The scan walks the (plan, load, shuffle) index from the emptiest end and stops at the first row that
    qualifies, so its cost depends on how many responses this expert has opened, not on the study."""
    seen = Audit.objects.filter(target=OuterRef("pk"), expert=expert)
    candidates = (AuditTarget.objects.filter(plan=plan, load__lt=plan.audits_per_response).filter(~Exists(seen))
                  .order_by("load", "shuffle"))
    return next(iter(candidates.select_for_update(skip_locked=True, of=("self",))[:1]), None)


def _expire(audit: Audit, now: datetime) -> None:
    if Audit.objects.filter(pk=audit.pk, status=Audit.Status.LEASED).update(status=Audit.Status.EXPIRED,
                                                                             closed_at=now):
        AuditTarget.objects.filter(pk=audit.target_id).update(load=F("load") - 1)


def reclaim_expired_audit_leases(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Return lapsed audit leases to the pool (claims that find the pool empty do a few each)."""
    with transaction.atomic():
        return _reclaim(now or timezone.now(), limit)


def _reclaim(now: datetime, limit: int) -> int:
    expired = list(Audit.objects.filter(status=Audit.Status.LEASED, expires_at__lte=now)
                   .select_for_update(skip_locked=True).order_by("expires_at")[:limit])
    for audit in expired:
        _expire(audit, now)
    return len(expired)


# --- the expert's own audit -------------------------------------------------------------------------------

def _own_audit(plan: AuditPlan, expert: AbstractBaseUser, audit_id: int) -> Audit:
    audit = (Audit.objects.select_for_update(of=("self",)).select_related("target__response")
             .filter(pk=audit_id, plan=plan, expert=expert).first())
    if audit is None:
        raise NotFound("This response is not assigned to you.")
    return audit


GONE = ("Your time on this response ran out and other experts have audited it since, so it needs no more "
        "audits. Your notes on it are kept. Here is the response you can audit now.")


def _retake(audit: Audit, plan: AuditPlan) -> None:
    """A lapsed (reclaimed) audit comes back to its expert if the response still needs an audit."""
    if not AuditTarget.objects.filter(pk=audit.target_id, load__lt=plan.audits_per_response).update(
            load=F("load") + 1):
        raise AuditError(GONE)


def _keep_working(audit: Audit, plan: AuditPlan, expert: AbstractBaseUser, now: datetime) -> None:
    """Before a draft changes: the audit must be open; a lapsed one is reopened if it can be; the lease is
    renewed, since the expert is plainly still at work."""
    if audit.status == Audit.Status.SUBMITTED:
        raise AuditError("This audit is already submitted; its findings can no longer change.")
    if audit.status == Audit.Status.EXPIRED:
        if Audit.objects.filter(plan=plan, expert=expert, status=Audit.Status.LEASED).exists():
            raise AuditError("This response is no longer open to you. Your notes on it are kept; here is the "
                             "response you have open now.")
        _retake(audit, plan)
        audit.status, audit.closed_at = Audit.Status.LEASED, None
    audit.expires_at = _lease_end(plan, now)
    Audit.objects.filter(pk=audit.pk).update(status=audit.status, closed_at=audit.closed_at,
                                             expires_at=audit.expires_at)


def _normalise_breaks(text: str) -> str:
    # Browsers turn CR LF and CR into LF when they parse a page, so a quote taken from the page has LF only.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _locate(text: str, quote: str) -> tuple[int, int]:
    """The one place `quote` occurs in `text` (line breaks compared loosely), as offsets into `text`."""
    wanted = _normalise_breaks(quote)
    # Offsets into the text with its line breaks normalised, mapped back to the original text.
    originals, normalised = [], []
    i = 0
    while i < len(text):
        originals.append(i)
        if text.startswith("\r\n", i):
            normalised.append("\n")
            i += 2
        else:
            normalised.append("\n" if text[i] == "\r" else text[i])
            i += 1
    originals.append(len(text))
    flat = "".join(normalised)
    found = flat.count(wanted)
    if found == 0:
        raise AuditError("The quoted passage does not appear in the response. Copy it exactly, or select it "
                         "in the response text.")
    if found > 1:
        raise AuditError(f"The quoted passage appears {found} times in the response. Quote a little more of it, "
                         "or select it in the response text, so it is clear which one you mean.")
    start = flat.index(wanted)
    return originals[start], originals[start + len(wanted)]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Leave out white space at either end of a selection: a double-click often takes a trailing space."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _clean_text(value: str | None) -> str:
    return (value or "").replace("\x00", "").strip()  # PostgreSQL refuses NUL in text


def _clean_source(value: str | None) -> str:
    source = _clean_text(value)
    if not source:
        return ""
    if len(source) > MAX_URL:
        raise AuditError(f"The source address is longer than {MAX_URL} characters.")
    try:
        URLValidator(schemes=["http", "https"])(source)
    except ValidationError:
        raise AuditError("The source must be a web address starting with http:// or https://.") from None
    return source


def finding_add(*, plan: AuditPlan, expert: AbstractBaseUser, audit_id: int, severity: str, note: str,
                correction: str, quote: str, start: int | None = None, end: int | None = None,
                source_url: str = "", now: datetime | None = None) -> AuditFinding:
    """Save a flagged span on the expert's open audit as a draft (final when the verdict is submitted).

    The span is given by offsets into the response text (code points, as Python indexes strings) together with
    the text they cover, which must match (line breaks compared loosely); or, without offsets, by the quote
    alone, which must occur exactly once. White space at the ends of the span is left out. The same finding
    sent twice is stored once.
    """
    now = now or timezone.now()
    severity, note, correction = (severity or "").strip(), _clean_text(note), _clean_text(correction)
    quote = (quote or "").replace("\x00", "")
    if severity not in AuditFinding.Severity.values:
        raise AuditError("Choose how serious the error is: minor or major.")
    if not note:
        raise AuditError("Say what is wrong in the selected passage.")
    if not correction:
        raise AuditError("Give the correction: what is right instead.")
    if len(note) > MAX_TEXT or len(correction) > MAX_TEXT:
        raise AuditError(f"Please keep what is wrong and the correction under {MAX_TEXT} characters each.")
    source_url = _clean_source(source_url)
    with transaction.atomic():
        audit = _own_audit(plan, expert, audit_id)
        text = audit.target.response.text
        if start is None and end is None:
            if not quote.strip():
                raise AuditError("Select the wrong passage in the response text first (or paste it into the "
                                 "quote box).")
            start, end = _locate(text, quote.strip())
        elif start is None or end is None or not 0 <= start < end <= len(text):
            raise AuditError("The selected span is not inside the response. Select the passage again.")
        elif _normalise_breaks(text[start:end]) != _normalise_breaks(quote):
            raise AuditError("The selected text does not match the response at that place (the page may be out "
                             "of date). Select the passage again.")
        start, end = _trim(text, start, end)
        if start >= end:
            raise AuditError("Select some words, not only white space.")
        _keep_working(audit, plan, expert, now)
        same = audit.findings.filter(start=start, end=end, severity=severity, note=note, correction=correction).first()
        if same is not None:
            return same
        if audit.findings.count() >= MAX_FINDINGS:
            raise AuditError(f"An audit can hold at most {MAX_FINDINGS} findings.")
        return AuditFinding.objects.create(audit=audit, start=start, end=end, quote=text[start:end],
                                           severity=severity, note=note, correction=correction,
                                           source_url=source_url)


def finding_delete(*, plan: AuditPlan, expert: AbstractBaseUser, audit_id: int, finding_id: int,
                   now: datetime | None = None) -> None:
    """Remove a draft finding from the expert's open audit; a finding already gone is not an error."""
    with transaction.atomic():
        audit = _own_audit(plan, expert, audit_id)
        _keep_working(audit, plan, expert, now or timezone.now())
        audit.findings.filter(pk=finding_id).delete()


# --- submitting -------------------------------------------------------------------------------------------

@dataclass
class AuditSubmission:
    audit: Audit
    duplicate: bool  # submitted before; nothing new was recorded
    lapsed: bool = False  # submitted after its lease was reclaimed: the expert may hold a newer open lease


def audit_submit(*, plan: AuditPlan, expert: AbstractBaseUser, audit_id: int, verdict: str, comment: str = "",
                 now: datetime | None = None) -> AuditSubmission:
    """Finalise the expert's audit with their verdict; a repeated submit returns the first one."""
    with transaction.atomic():
        return _submit(plan, expert, audit_id, verdict, comment, now or timezone.now())


def audit_submit_and_claim(*, plan: AuditPlan, expert: AbstractBaseUser, audit_id: int, verdict: str,
                           comment: str = "", now: datetime | None = None) -> tuple[AuditSubmission, AuditClaim]:
    """Submit and lease the next response in one transaction (the htmx round trip). A refused submit
    (AuditError) rolls back and claims nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        submission = _submit(plan, expert, audit_id, verdict, comment, now)
        return submission, _claim(plan, expert, now, has_open_lease=submission.duplicate or submission.lapsed)


VERDICT_WITHOUT_FINDINGS = (Audit.Verdict.NO_ERRORS, Audit.Verdict.NOT_CHECKABLE)


def verdict_problem(verdict: str, severities: list[str]) -> str:
    """Why `verdict` does not fit the findings recorded (their severities), or "" when it does."""
    labels = dict(Audit.Verdict.choices)
    if verdict not in Audit.Verdict.values:
        return ("Choose your verdict: no factual errors, minor errors only, at least one major error, or not "
                "checkable.")
    if verdict in VERDICT_WITHOUT_FINDINGS and severities:
        return (f"You flagged {len(severities)} passage{'s' if len(severities) > 1 else ''}. Delete "
                f"{'them' if len(severities) > 1 else 'it'} first, or choose “{labels['minor']}” or "
                f"“{labels['major']}”.")
    if verdict not in VERDICT_WITHOUT_FINDINGS and not severities:
        return (f"Flag at least one wrong passage before choosing “{labels[verdict]}”, or choose "
                f"“{labels['no_errors']}”.")
    if verdict == Audit.Verdict.MINOR and AuditFinding.Severity.MAJOR in severities:
        return f"You flagged a major error, so the verdict is “{labels['major']}”."
    return ""


def _submit(plan: AuditPlan, expert: AbstractBaseUser, audit_id: int, verdict: str, comment: str,
            now: datetime) -> AuditSubmission:
    verdict, comment = (verdict or "").strip(), _clean_text(comment)
    audit = _own_audit(plan, expert, audit_id)
    if audit.status == Audit.Status.SUBMITTED:
        return AuditSubmission(audit, duplicate=True)
    problem = verdict_problem(verdict, list(audit.findings.values_list("severity", flat=True)))
    if problem:
        raise AuditError(problem)
    if len(comment) > MAX_TEXT:
        raise AuditError(f"Please keep the comment under {MAX_TEXT} characters.")
    lapsed = audit.status == Audit.Status.EXPIRED
    if lapsed:
        _retake(audit, plan)
    Audit.objects.filter(pk=audit.pk).update(
        status=Audit.Status.SUBMITTED, verdict=verdict, comment=comment, submitted_at=now, closed_at=now,
        server_seconds=max((now - audit.leased_at).total_seconds(), 0.0))
    AuditTarget.objects.filter(pk=audit.target_id).update(audits_done=F("audits_done") + 1)
    audit.refresh_from_db()
    return AuditSubmission(audit, duplicate=False, lapsed=lapsed)
