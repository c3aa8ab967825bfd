"""The rating engine: rater entry, leasing comparisons, recording judgments, quality control.

The rules (DESIGN.md, "Assignment"): each comparison gets exactly k judgments that count, never two from one
rater; a rater holds at most one open lease, and a reload shows the same comparison in the same order;
leases not submitted in time return to the pool; the next comparison is the least-filled one (then random),
so a half-finished study is balanced; a submit that arrives twice records one judgment.

How: one transaction per claim or submit. On PostgreSQL the candidate comparisons are read with
SELECT ... FOR UPDATE SKIP LOCKED over a handful of rows found through the (study, is_gold, load, shuffle)
index, so concurrent raters never wait on each other and the cost does not grow with the study. On SQLite
(the embedded default) transactions are IMMEDIATE, which serialises writers. The unique constraints in
raters.models are the last line of defence.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from evalsite import rawsql
from evalsite.studies.models import Comparison, Prompt, Response, Study
from raters.models import Assignment, Judgment, Rater

RECLAIM_BATCH = 20  # expired leases returned to the pool per claim; the periodic task catches up the rest
MAX_REASON = 2000


class RatingError(Exception):
    """A rater's request that cannot be honoured; the message is safe to show to the rater."""


class NotFound(RatingError):
    pass


# --- entry ------------------------------------------------------------------------------------------------

def rater_enter(*, study: Study, provider: str, external_id: str, provider_data: dict | None = None) -> Rater:
    """The rater for this (study, provider, id), created on first arrival; coming back resumes."""
    external_id = external_id.strip()
    if not external_id:
        raise RatingError("The link is missing your participant id.")
    if len(external_id) > 200:
        raise RatingError("The participant id in the link is too long.")
    try:
        with transaction.atomic():
            rater, created = Rater.objects.get_or_create(
                study=study, provider=provider, external_id=external_id,
                defaults={"provider_data": provider_data or {}},
            )
    except IntegrityError:  # two first requests at once: the other one created it
        rater, created = Rater.objects.get(study=study, provider=provider, external_id=external_id), False
    if not created and provider_data and provider_data != rater.provider_data:
        # A returning MTurk worker comes with a new assignmentId; keep the latest for the submit form.
        rater.provider_data = {**rater.provider_data, **provider_data}
        rater.save(update_fields=["provider_data", "last_seen_at"])
    return rater


def rater_consent(*, rater: Rater) -> Rater:
    if rater.consented_at is None:
        rater.consented_at = timezone.now()
        rater.save(update_fields=["consented_at", "last_seen_at"])
    return rater


# --- claiming ---------------------------------------------------------------------------------------------

@dataclass
class Claim:
    """The rater's current assignment, or why there is none (`reason`: see `END_REASONS`)."""

    assignment: Assignment | None
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.assignment is None


END_REASONS = {
    "cap_reached": "You have completed all the comparisons of this study.",
    "pool_empty": "There are no more comparisons for you right now. Thank you!",
    "screened_out": "Thank you for your time.",
    "blocked": "Thank you for your time.",
    "not_live": "This study is not accepting ratings at the moment.",
    "no_consent": "Please read and accept the instructions first.",
}


def assignment_claim(*, rater: Rater, now: datetime | None = None) -> Claim:
    """The rater's open assignment if they have one, else a new lease on the best next comparison."""
    with transaction.atomic():
        return _claim(rater, now or timezone.now())


def _claim(rater: Rater, now: datetime, *, has_open_lease: bool = True) -> Claim:
    """Claim inside the caller's transaction. `has_open_lease=False` skips looking for an open lease when
    the caller has just closed the rater's only one (a submit)."""
    study = rater.study
    if has_open_lease:
        current = (Assignment.objects.select_related("comparison")
                   .filter(rater=rater, status=Assignment.Status.LEASED).first())
        if current is not None:
            if current.expires_at > now:
                return Claim(current)
            _expire(current, now)
    if rater.status != Rater.Status.ACTIVE:
        return Claim(None, rater.status)
    if study.status != Study.Status.LIVE:
        return Claim(None, "not_live")
    if rater.consented_at is None:
        return Claim(None, "no_consent")
    if rater.judgments_count >= study.per_rater_cap:
        return Claim(None, "cap_reached")
    comparison = None
    if study.gold_rate > 0 and random.random() < study.gold_rate:
        comparison = _pick(rater, study, gold=True)
    if comparison is None:
        comparison = _pick(rater, study, gold=False)
    # Abandoned leases are returned to the pool by a periodic task; when the pool looks empty, do it now
    # (in the embedded default there is no beat) rather than send a rater away from work that exists.
    if comparison is None and _reclaim(now, RECLAIM_BATCH):
        comparison = _pick(rater, study, gold=False)
    if comparison is None:
        return Claim(None, "pool_empty")
    # Alternate sides per comparison, starting at a random side: each system is on the left in half
    # of each comparison's leases (to within one), hence in half of the study's. Gold comparisons are
    # not counted in `load`, so they alternate over raters instead.
    turn = rater.pk if comparison.is_gold else comparison.load
    values = {"comparison_id": comparison.pk, "rater_id": rater.pk, "left_is_a": (turn + comparison.shuffle) % 2 == 0,
              "is_gold": comparison.is_gold, "status": Assignment.Status.LEASED, "leased_at": now,
              "expires_at": now + timedelta(seconds=study.lease_ttl_seconds), "closed_at": None}
    statements = [] if comparison.is_gold else [
        ("UPDATE studies_comparison SET load = load + 1 WHERE id = %s", [comparison.pk])]
    statements.append(rawsql.insert_statement(Assignment, values))
    assignment = Assignment(id=rawsql.execute_together(statements)[0], **values)
    assignment._state.adding, assignment._state.db = False, connection.alias
    assignment.comparison, assignment.rater = comparison, rater
    return Claim(assignment)


# What a fresh lease needs of its comparison: the engine's fields, then the texts the page shows.
PICKED = ((Comparison, "c", ("id", "study_id", "prompt_id", "response_a_id", "response_b_id", "is_gold",
                             "gold_expected", "load", "shuffle")),
          (Prompt, "p", ("id", "text", "messages")),
          (Response, "ra", ("id", "text")),
          (Response, "rb", ("id", "text")))


def _pick(rater: Rater, study: Study, *, gold: bool) -> Comparison | None:
    """The least-filled comparison this rater has not seen, skipping rows another claim holds locked.

    The scan walks the (study, is_gold, load, shuffle) index from the emptiest end and stops at the first
    row that qualifies, so its cost depends on how many comparisons this rater has seen, not on the study.
    The prompt and both responses come along, so the page shows the new comparison without another query.
    """
    if gold:  # shown to every rater and never full, so nothing to count or lock
        row = rawsql.fetchone(_pick_sql(gold=True, vendor=connection.vendor), [study.pk, True, rater.pk])
    else:
        row = rawsql.fetchone(_pick_sql(gold=False, vendor=connection.vendor),
                              [study.pk, False, study.judgments_per_comparison, rater.pk])
    if row is None:
        return None
    comparison, comparison.prompt, comparison.response_a, comparison.response_b = rawsql.build_all(PICKED, row)
    return comparison


@cache
def _pick_sql(*, gold: bool, vendor: str) -> str:
    select = rawsql.select_list(PICKED)
    features = connection.features
    lock = ("FOR UPDATE OF c SKIP LOCKED" if not gold and features.has_select_for_update_skip_locked
            and features.has_select_for_update_of else "")
    return f"""SELECT {select}
        FROM studies_comparison c
        JOIN studies_prompt p ON p.id = c.prompt_id
        JOIN studies_response ra ON ra.id = c.response_a_id
        JOIN studies_response rb ON rb.id = c.response_b_id
        WHERE c.study_id = %s AND c.is_gold = %s {"" if gold else "AND c.load < %s"}
          AND NOT EXISTS (SELECT 1 FROM raters_assignment seen WHERE seen.comparison_id = c.id AND seen.rater_id = %s)
        ORDER BY c.load, c.shuffle
        LIMIT 1 {lock}"""


def _expire(assignment: Assignment, now: datetime) -> None:
    updated = Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.LEASED).update(
        status=Assignment.Status.EXPIRED, closed_at=now)
    if updated and not assignment.is_gold:
        Comparison.objects.filter(pk=assignment.comparison_id).update(load=F("load") - 1)


def reclaim_expired_leases(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Return abandoned leases to the pool. Claims do a few each; a periodic task catches up the rest."""
    with transaction.atomic():
        return _reclaim(now or timezone.now(), limit)


def _reclaim(now: datetime, limit: int) -> int:
    expired = list(Assignment.objects.filter(status=Assignment.Status.LEASED, expires_at__lte=now)
                   .select_for_update(skip_locked=True).order_by("expires_at")[:limit])
    for assignment in expired:
        _expire(assignment, now)
    return len(expired)


# --- submitting -------------------------------------------------------------------------------------------

@dataclass
class Submission:
    judgment: Judgment
    duplicate: bool  # the same submit arrived before; nothing new was recorded
    lapsed: bool = False  # submitted after its lease lapsed: the rater may hold a newer open lease


def judgment_submit(*, rater: Rater, assignment_id: int, choice: str, strength: str = "", reason: str = "",
                    active_seconds: float | None = None, now: datetime | None = None) -> Submission:
    """Record the rater's judgment on their assignment; a repeated submit returns the first one."""
    with transaction.atomic():
        return _submit(rater, assignment_id, choice, strength, reason, active_seconds, now or timezone.now())


def judgment_submit_and_claim(*, rater: Rater, assignment_id: int, choice: str, strength: str = "",
                              reason: str = "", active_seconds: float | None = None,
                              now: datetime | None = None) -> tuple[Submission, Claim]:
    """Submit and lease the next comparison in one transaction: the rating loop's round trip.

    One commit instead of two, and no lookup of an open lease after a fresh submit (it just closed the
    rater's only one). A refused submit (RatingError) rolls back and claims nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        submission = _submit(rater, assignment_id, choice, strength, reason, active_seconds, now)
        return submission, _claim(rater, now, has_open_lease=submission.duplicate or submission.lapsed)


def _submit(rater: Rater, assignment_id: int, choice: str, strength: str, reason: str,
            active_seconds: float | None, now: datetime) -> Submission:
    study = rater.study
    choice, strength, reason = (choice or "").strip(), (strength or "").strip(), (reason or "").strip()
    closing = []  # the statement that closes the lease, when it is not closed yet
    lapsed = False
    assignment = _close_open_lease(rater, assignment_id, now)
    if assignment is None:  # not an open lease of this rater's: unknown, someone else's, sent before, or lapsed
        assignment = _lock_assignment(rater, assignment_id)
        if assignment is None:
            raise NotFound("This comparison is not assigned to you.")
        if assignment.status == Assignment.Status.SUBMITTED:
            return Submission(Judgment.objects.get(assignment=assignment), duplicate=True)
        lapsed = assignment.status != Assignment.Status.LEASED
        closing = [("UPDATE raters_assignment SET status = %s, closed_at = %s WHERE id = %s",
                    [Assignment.Status.SUBMITTED, rawsql.prep(Assignment, "closed_at", now), assignment.pk])]
    _validate_choice(study, choice, strength, reason)  # a refusal rolls back a lease closed above too
    comparison = assignment.comparison
    if lapsed:
        _retake_lapsed_lease(assignment, comparison, study)
    winner = _resolve_winner(choice, assignment.left_is_a)
    server_seconds = max((now - assignment.leased_at).total_seconds(), 0.0)
    if active_seconds is not None:
        active_seconds = min(max(float(active_seconds), 0.0), server_seconds)
    fastest = min(server_seconds, active_seconds if active_seconds is not None else server_seconds)
    gold_passed = _gold_passed(comparison, winner) if comparison.is_gold else None
    values = {
        "assignment_id": assignment.pk, "comparison_id": comparison.pk, "rater_id": rater.pk, "choice": choice,
        "winner": winner,
        "winner_response_id": {"a": comparison.response_a_id, "b": comparison.response_b_id}.get(winner),
        "strength": strength if choice in (Judgment.Choice.LEFT, Judgment.Choice.RIGHT) else "",
        "reason": reason, "server_seconds": server_seconds, "active_seconds": active_seconds,
        "is_gold": comparison.is_gold, "gold_passed": gold_passed,
        "too_fast": fastest < study.min_seconds_per_judgment, "excluded": False, "excluded_reason": "",
        "created_at": now,
    }
    judgment_id = rawsql.execute_together([
        *closing,
        ("UPDATE studies_comparison SET judgments_done = judgments_done + 1 WHERE id = %s", [comparison.pk]),
        _count_for_rater(rater, gold_passed, now),
        rawsql.insert_statement(Judgment, values),
    ])[0]
    judgment = Judgment(id=judgment_id, **values)
    judgment._state.adding, judgment._state.db = False, connection.alias
    judgment.assignment, judgment.comparison, judgment.rater = assignment, comparison, rater
    if gold_passed is None:
        rater.judgments_count += 1
    else:
        _screen_on_gold(rater)
    return Submission(judgment, duplicate=False, lapsed=lapsed)


# What a submit needs of an assignment and of its comparison.
ASSIGNMENT_FIELDS = ("id", "comparison_id", "rater_id", "left_is_a", "is_gold", "status", "leased_at")
COMPARISON_FIELDS = ("id", "response_a_id", "response_b_id", "is_gold", "gold_expected")


def _close_open_lease(rater: Rater, assignment_id: int, now: datetime) -> Assignment | None:
    """The common case in one statement: mark the rater's open lease submitted and read back what the
    judgment needs (the row stays locked until the transaction ends). None if it is not an open lease of
    theirs; nothing changed then."""
    row = rawsql.fetchone(_close_sql(connection.vendor), [
        Assignment.Status.SUBMITTED, rawsql.prep(Assignment, "closed_at", now), assignment_id, rater.pk,
        Assignment.Status.LEASED])
    if row is None:
        return None
    columns = rawsql.cols(Assignment, "", ASSIGNMENT_FIELDS)
    assignment = columns.build(row)
    response_a_id, response_b_id, gold_expected = row[columns.width:]
    assignment.comparison = Comparison.from_db(connection.alias, COMPARISON_FIELDS, [
        assignment.comparison_id, response_a_id, response_b_id, assignment.is_gold, gold_expected])
    assignment.rater = rater
    return assignment


@cache
def _close_sql(vendor: str) -> str:
    # Subqueries rather than UPDATE ... FROM, and bare column names: SQLite's RETURNING can name neither a
    # joined table nor an alias. Inside the subqueries `comparison_id` is the assignment's.
    of_comparison = "(SELECT c.{} FROM studies_comparison c WHERE c.id = comparison_id)"
    return f"""UPDATE raters_assignment SET status = %s, closed_at = %s
        WHERE id = %s AND rater_id = %s AND status = %s
        RETURNING {rawsql.cols(Assignment, "", ASSIGNMENT_FIELDS).sql},
            {", ".join(of_comparison.format(name) for name in COMPARISON_FIELDS[1:3] + COMPARISON_FIELDS[4:])}"""


LOCKED = ((Assignment, "a", ASSIGNMENT_FIELDS), (Comparison, "c", COMPARISON_FIELDS))


def _lock_assignment(rater: Rater, assignment_id: int) -> Assignment | None:
    """The rater's assignment with what a submit needs of its comparison, locked until the transaction ends
    (where the database has row locks; SQLite's write transactions are serialised anyway)."""
    row = rawsql.fetchone(_lock_sql(connection.vendor), [assignment_id, rater.pk])
    if row is None:
        return None
    assignment, assignment.comparison = rawsql.build_all(LOCKED, row)
    assignment.rater = rater
    return assignment


@cache
def _lock_sql(vendor: str) -> str:
    select = rawsql.select_list(LOCKED)
    lock = "FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    return f"""SELECT {select} FROM raters_assignment a JOIN studies_comparison c ON c.id = a.comparison_id
        WHERE a.id = %s AND a.rater_id = %s {lock}"""


def _validate_choice(study: Study, choice: str, strength: str, reason: str) -> None:
    allowed = [Judgment.Choice.LEFT, Judgment.Choice.RIGHT, Judgment.Choice.TIE]
    if study.allows_both_bad:
        allowed.append(Judgment.Choice.BOTH_BAD)
    if choice not in allowed:
        raise RatingError("Choose Response A, Response B" + (", tie or both bad." if study.allows_both_bad else " or tie."))
    if study.asks_strength and choice in (Judgment.Choice.LEFT, Judgment.Choice.RIGHT):
        if strength not in Judgment.Strength.values:
            raise RatingError("Say whether the better response is slightly or much better.")
    elif strength and strength not in Judgment.Strength.values:
        raise RatingError("Unknown strength.")
    if study.reason_mode == Study.ReasonMode.REQUIRED and not reason:
        raise RatingError("Please give a short reason for your choice.")
    if len(reason) > MAX_REASON:
        raise RatingError(f"Please keep the reason under {MAX_REASON} characters.")


def _retake_lapsed_lease(assignment: Assignment, comparison: Comparison, study: Study) -> None:
    """A submit after the lease lapsed is kept if the comparison still needs it; otherwise say so."""
    if assignment.status == Assignment.Status.RELEASED:
        raise RatingError("This comparison is no longer open to you.")
    if not comparison.is_gold:
        taken = Comparison.objects.filter(pk=comparison.pk, load__lt=study.judgments_per_comparison).update(
            load=F("load") + 1)
        if not taken:
            raise RatingError("Your time on this comparison ran out and it was given to someone else. "
                              "Here is a new one.")


def _resolve_winner(choice: str, left_is_a: bool) -> str:
    if choice == Judgment.Choice.LEFT:
        return Judgment.Winner.A if left_is_a else Judgment.Winner.B
    if choice == Judgment.Choice.RIGHT:
        return Judgment.Winner.B if left_is_a else Judgment.Winner.A
    return Judgment.Winner.TIE  # tie and both-bad: neither response wins


def _gold_passed(comparison: Comparison, winner: str) -> bool:
    return winner == comparison.gold_expected


def _count_for_rater(rater: Rater, gold_passed: bool | None, now: datetime) -> tuple[str, list]:
    """The statement that counts a judgment for its rater: an ordinary one, or a gold one answered."""
    seen = rawsql.prep(Rater, "last_seen_at", now)
    if gold_passed is None:
        return ("UPDATE raters_rater SET judgments_count = judgments_count + 1, last_seen_at = %s WHERE id = %s",
                [seen, rater.pk])
    return ("UPDATE raters_rater SET gold_answered = gold_answered + 1, gold_correct = gold_correct + %s, "
            "last_seen_at = %s WHERE id = %s", [int(gold_passed), seen, rater.pk])


def _screen_on_gold(rater: Rater) -> None:
    """After a gold answer: screen the rater out once their accuracy is below the study's threshold."""
    rater.refresh_from_db(fields=["gold_answered", "gold_correct", "judgments_count", "status"])
    study = rater.study
    if (rater.status == Rater.Status.ACTIVE and rater.gold_answered >= study.gold_min_answered
            and rater.gold_accuracy < study.gold_accuracy_threshold):
        reason = (f"gold accuracy {rater.gold_correct}/{rater.gold_answered} below the study's threshold of "
                  f"{study.gold_accuracy_threshold:.0%}")
        _exclude_rater(rater, Rater.Status.SCREENED_OUT, reason)


# --- researcher actions on raters ---------------------------------------------------------------------------

def rater_block(*, rater: Rater, reason: str = "") -> Rater:
    """Stop a rater; their judgments are kept but excluded, and the comparisons they held reopen.

    A screened-out rater cannot be blocked: a later unblock would revive someone quality control removed.
    """
    with transaction.atomic():
        rater = Rater.objects.select_for_update().get(pk=rater.pk)
        if rater.status == Rater.Status.SCREENED_OUT:
            raise RatingError(f"{rater.pseudonym} is already screened out by quality control; nothing changed.")
        if rater.status != Rater.Status.BLOCKED:
            _exclude_rater(rater, Rater.Status.BLOCKED, reason or "blocked by a researcher")
    return rater


def rater_unblock(*, rater: Rater) -> Rater:
    """Let a blocked rater back in and count their judgments again where the comparison still has room."""
    with transaction.atomic():
        rater = Rater.objects.select_for_update().get(pk=rater.pk)
        if rater.status != Rater.Status.BLOCKED:
            return rater
        k = rater.study.judgments_per_comparison
        restored = 0
        for judgment in rater.judgments.filter(excluded=True, is_gold=False).select_related("comparison"):
            # Only the exclusion made for the block is undone, and only while the comparison is not yet
            # full again: a comparison never ends with more than k judgments that count.
            if judgment.excluded_reason != rater.status_reason:
                continue
            if Comparison.objects.filter(pk=judgment.comparison_id, load__lt=k).update(load=F("load") + 1):
                Judgment.objects.filter(pk=judgment.pk).update(excluded=False, excluded_reason="")
                restored += 1
        rater.judgments.filter(excluded=True, is_gold=True, excluded_reason=rater.status_reason).update(
            excluded=False, excluded_reason="")
        rater.status, rater.status_reason = Rater.Status.ACTIVE, ""
        rater.save(update_fields=["status", "status_reason", "last_seen_at"])
    return rater


def _exclude_rater(rater: Rater, status: str, reason: str) -> None:
    """Flag every judgment of the rater as excluded, reopen their comparisons, release their open lease."""
    now = timezone.now()
    open_lease = Assignment.objects.filter(rater=rater, status=Assignment.Status.LEASED).first()
    if open_lease is not None:
        Assignment.objects.filter(pk=open_lease.pk).update(status=Assignment.Status.RELEASED, closed_at=now)
        if not open_lease.is_gold:
            Comparison.objects.filter(pk=open_lease.comparison_id).update(load=F("load") - 1)
    counted = list(rater.judgments.filter(excluded=False, is_gold=False).values_list("comparison_id", flat=True))
    rater.judgments.filter(excluded=False).update(excluded=True, excluded_reason=reason[:300])
    if counted:
        Comparison.objects.filter(pk__in=counted).update(load=F("load") - 1)
    rater.status, rater.status_reason = status, reason[:300]
    Rater.objects.filter(pk=rater.pk).update(status=status, status_reason=reason[:300])
