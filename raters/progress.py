"""Reads for the researcher's rater pages: a study's progress, its raters table, responses that name a model.

Every number is computed in the database with a fixed number of queries per page, whatever the number of
raters, comparisons or judgments (the raters table is checked for this in the tests).
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from evalsite.studies.models import Comparison, Response, Study
from raters.models import Assignment, Judgment, Rater


@dataclass
class CoverageBucket:
    judgments: int  # judgments that count on a comparison
    comparisons: int  # how many comparisons have exactly that many
    share: float  # of all non-gold comparisons, 0..1


@dataclass
class ExclusionReason:
    reason: str
    judgments: int
    raters: int


@dataclass
class StudyProgress:
    k: int
    comparisons: int  # non-gold: the ones that need k judgments
    gold_comparisons: int
    judgments_counted: int  # not excluded, on non-gold comparisons: what fills the study
    judgments_needed: int
    complete_comparisons: int
    open_leases: int  # leased and within their time
    lapsed_leases: int  # leased, past their time, not yet returned to the pool
    gold_judgments: int
    gold_passed: int
    excluded: int
    exclusion_reasons: list[ExclusionReason] = field(default_factory=list)
    coverage: list[CoverageBucket] = field(default_factory=list)
    raters_by_status: list[tuple[str, str, int]] = field(default_factory=list)  # (status, label, raters)

    @property
    def percent(self) -> float:
        return 100.0 * self.judgments_counted / self.judgments_needed if self.judgments_needed else 0.0

    @property
    def raters(self) -> int:
        return sum(n for _, _, n in self.raters_by_status)


def _coverage(study: Study) -> dict[int, int]:
    """{judgments that count: number of comparisons with that many}, over the non-gold comparisons.

    Read from the engine's `load` counter (judgments that count plus open leases, kept in the same
    transaction as the rows it counts) less each comparison's open leases: an index-only scan of the
    comparisons, where counting judgments per comparison would read every judgment of the study on every
    5-second refresh. The tests check this against a direct count after claims, submits, blocks and expiries.
    """
    per_load = dict(Comparison.objects.filter(study=study, is_gold=False).order_by().values("load")
                    .annotate(n=Count("pk")).values_list("load", "n"))
    # Leases taken while the comparison was non-gold are the ones its load includes.
    held = (Assignment.objects.filter(comparison__study=study, comparison__is_gold=False, is_gold=False,
                                      status=Assignment.Status.LEASED)
            .order_by().values("comparison_id", "comparison__load").annotate(n=Count("pk"))
            .values_list("comparison__load", "n"))
    for load, leases in held:
        per_load[load] -= 1
        per_load[load - leases] = per_load.get(load - leases, 0) + 1
    return {n: c for n, c in per_load.items() if c}


def study_progress(*, study: Study, now: datetime | None = None) -> StudyProgress:
    now = now or timezone.now()
    k = study.judgments_per_comparison
    per_count = _coverage(study)
    comparisons = sum(per_count.values())
    top = max([k, *per_count])
    coverage = [CoverageBucket(n, per_count.get(n, 0), per_count.get(n, 0) / comparisons if comparisons else 0.0)
                for n in range(top + 1)]

    # Exclusions are few and indexed; gold answers come from the raters' counters. Neither reads every
    # judgment of the study, which matters on a page that refreshes itself every few seconds.
    reasons = list(Judgment.objects.filter(comparison__study=study, excluded=True).order_by()
                   .values("excluded_reason").annotate(judgments=Count("pk"), raters=Count("rater", distinct=True))
                   .order_by("-judgments", "excluded_reason"))
    gold = Rater.objects.filter(study=study).aggregate(answered=Sum("gold_answered"), correct=Sum("gold_correct"))
    leases = Assignment.objects.filter(comparison__study=study, status=Assignment.Status.LEASED).aggregate(
        open=Count("pk", filter=Q(expires_at__gt=now)), lapsed=Count("pk", filter=Q(expires_at__lte=now)))
    statuses = dict(Rater.objects.filter(study=study).order_by().values("status")
                    .annotate(n=Count("pk")).values_list("status", "n"))
    return StudyProgress(
        k=k,
        comparisons=comparisons,
        gold_comparisons=Comparison.objects.filter(study=study, is_gold=True).count(),
        # A comparison above k (which the engine must never produce) counts k towards the goal.
        judgments_counted=sum(min(n, k) * c for n, c in per_count.items()),
        judgments_needed=comparisons * k,
        complete_comparisons=sum(c for n, c in per_count.items() if n >= k),
        open_leases=leases["open"],
        lapsed_leases=leases["lapsed"],
        gold_judgments=gold["answered"] or 0,
        gold_passed=gold["correct"] or 0,
        excluded=sum(r["judgments"] for r in reasons),
        exclusion_reasons=[ExclusionReason(r["excluded_reason"] or "(no reason recorded)", r["judgments"], r["raters"])
                           for r in reasons],
        coverage=coverage,
        raters_by_status=[(value, label, statuses.get(value, 0)) for value, label in Rater.Status.choices],
    )


def study_flagged_responses(*, study: Study) -> QuerySet[Response]:
    """Responses that name a model or vendor, in prompt file order: they can unblind the raters who see them."""
    return (Response.objects.filter(prompt__study=study).exclude(names_model="")
            .select_related("prompt", "system").order_by("prompt__position", "prompt_id", "system__name"))


# --- the raters table -------------------------------------------------------------------------------------

def _judgment_count(**conditions) -> Coalesce:
    """Per rater, how many of their judgments meet `conditions`: a correlated subquery, so the database
    computes it only for the rows it returns unless the table is sorted by it."""
    rows = (Judgment.objects.filter(rater=OuterRef("pk"), **conditions).order_by().values("rater")
            .annotate(n=Count("pk")).values("n")[:1])
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


# Column name in the query string -> the expression it sorts by. Unknown names fall back to the default.
RATER_SORTS = {
    "pseudonym": "pseudonym",
    "provider": "provider",
    "judgments": "n_judgments",
    "gold": "gold_accuracy_value",
    "left": "left_share",
    "too_fast": "n_too_fast",
    "status": "status",
    "first_seen": "first_seen_at",
    "last_seen": "last_seen_at",
}
DEFAULT_RATER_SORT = "-last_seen"


def rater_sort_key(value: str | None) -> str:
    """The sort asked for if it is one we offer, else the default; "-" in front means descending."""
    name = (value or "").removeprefix("-")
    return value if name in RATER_SORTS else DEFAULT_RATER_SORT  # type: ignore[return-value]


def study_raters(*, study: Study, sort: str = DEFAULT_RATER_SORT, status: str | None = None) -> QuerySet[Rater]:
    """The study's raters with their judgment counts, gold accuracy and left share, sorted as asked.

    Raters without an answer (no gold yet, no A/B choice yet) sort last whichever the direction.
    """
    raters = Rater.objects.filter(study=study)
    if status:
        raters = raters.filter(status=status)
    raters = raters.annotate(
        n_judgments=_judgment_count(),
        n_left=_judgment_count(choice=Judgment.Choice.LEFT),
        n_right=_judgment_count(choice=Judgment.Choice.RIGHT),
        n_too_fast=_judgment_count(too_fast=True),
        n_excluded=_judgment_count(excluded=True),
    ).annotate(
        gold_accuracy_value=Case(
            When(gold_answered__gt=0, then=F("gold_correct") * 1.0 / F("gold_answered")),
            default=None, output_field=FloatField()),
        left_share=Case(
            When(Q(n_left__gt=0) | Q(n_right__gt=0), then=F("n_left") * 1.0 / (F("n_left") + F("n_right"))),
            default=None, output_field=FloatField()),
    )
    sort = rater_sort_key(sort)
    column = F(RATER_SORTS[sort.removeprefix("-")])
    order = column.desc(nulls_last=True) if sort.startswith("-") else column.asc(nulls_last=True)
    return raters.order_by(order, "pk")


def seconds_on_task(server_seconds: float, active_seconds: float | None) -> float:
    """The time a rater spent on one judgment: the page's active time when it reported one (it is capped at
    the server's lease-to-submit time), else the server's measure."""
    return active_seconds if active_seconds is not None else server_seconds


def raters_attach_median_seconds(raters: Iterable[Rater]) -> list[Rater]:
    """Set `median_seconds` (None without judgments) on each rater, with one query for all of them."""
    raters = list(raters)
    times: dict[int, list[float]] = {rater.pk: [] for rater in raters}
    rows = Judgment.objects.filter(rater_id__in=list(times)).values_list("rater_id", "server_seconds", "active_seconds")
    for rater_id, server_seconds, active_seconds in rows:
        times[rater_id].append(seconds_on_task(server_seconds, active_seconds))
    for rater in raters:
        rater.median_seconds = statistics.median(times[rater.pk]) if times[rater.pk] else None
    return raters
