"""Reads for the audit pages, the researcher's audit setup, and the results pages and exports.

Expert-facing reads (`audit_view`, `expert_progress`, `expert_queues`) return only what an expert may see:
the prompt and one response's text, the expert's own findings, and counts. System names, ids and metadata
never leave those functions.

For the results app (evalsite/results):

- `study_audit_report(study=...)` -> `StudyAuditReport`: what the results page shows. It holds the system
  and category names and an `evalsite.stats.audits.AuditReport` (per-system factuality, expert agreement,
  the crowd-vs-expert contrast overall and per category, the "won on style" shares), whose system and
  category fields are indexes into those names. `.to_dict()` gives JSON for the API.
- `study_audit_arrays(study=...)` -> `AuditArrays`: the same inputs as arrays, for anything else.
- `AUDIT_COLUMNS` + `audit_rows(study=...)`: the audits CSV, one row per submitted audit.
- `FINDING_COLUMNS` + `finding_rows(study=...)`: the findings CSV, one row per flagged span of a submitted
  audit, with its offsets into the response text and the quoted text.
  Both are generators of tuples in column order, reading the database in chunks: write them with csv.writer
  into a StreamingHttpResponse. Drafts (audits not yet submitted) are in neither.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from evalsite.stats import audits as audit_stats
from evalsite.stats.bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED
from evalsite.stats.data import Judgments
from evalsite.stats.results import ToDict
from evalsite.studies.models import Comparison, Study, System
from evalsite.studies.rendering import render_markdown
from raters.audits.models import Audit, AuditFinding, AuditPlan, AuditTarget
from raters.models import Judgment
from raters.selectors import Turn, conversation_turns

# --- who and which ----------------------------------------------------------------------------------------


def user_is_expert(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.groups.filter(name=settings.EXPERTS_GROUP).exists()


def plan_by_key(key: str) -> AuditPlan | None:
    return AuditPlan.objects.select_related("study").filter(key=key).first()


def plan_for_study(*, study: Study) -> AuditPlan | None:
    return AuditPlan.objects.filter(study=study).first()


# --- the audit page ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """A run of the response text with the same findings over it, or one line break (`break_`)."""

    start: int
    end: int
    text: str
    findings: tuple[int, ...] = ()
    severity: str = ""  # the worst severity of the findings over it
    break_: bool = False


def text_segments(text: str, findings: list[AuditFinding]) -> list[Segment]:
    """Cut the text at every finding boundary and around every CR / CR LF line break.

    Each segment becomes one element with its offset into the original text, so the page can turn a selection
    into offsets exactly: a browser parsing the page turns CR LF into LF, which would shift every offset after
    it, so those breaks are their own segments whose length the element states."""
    cuts = {0, len(text)}
    for finding in findings:
        cuts.update((min(finding.start, len(text)), min(finding.end, len(text))))
    i = text.find("\r")
    while i != -1:
        cuts.update((i, i + 2 if text.startswith("\r\n", i) else i + 1))
        i = text.find("\r", i + 1)
    # A CR LF is one line break: never cut between its two characters.
    bounds = sorted(c for c in cuts if not (0 < c < len(text) and text[c - 1] == "\r" and text[c] == "\n"))
    segments = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        over = tuple(f.pk for f in findings if f.start <= start and end <= f.end)
        severities = {f.severity for f in findings if f.pk in over}
        severity = "major" if "major" in severities else ("minor" if severities else "")
        piece = text[start:end]
        is_break = piece in ("\r\n", "\r")
        segments.append(Segment(start, end, "\n" if is_break else piece, over, severity, break_=is_break))
    return segments


def render_segments(segments: list[Segment]) -> SafeString:
    """One <span> per segment with data-s (start offset) and data-n (length in the original text); no white
    space between them, since the text is shown with white-space: pre-wrap."""
    parts = []
    for seg in segments:
        classes = ["seg"]
        if seg.severity:
            classes += ["flag", f"flag-{seg.severity}"]
        flags = f' data-f="{" ".join(str(pk) for pk in seg.findings)}"' if seg.findings else ""
        parts.append(f'<span class="{" ".join(classes)}" data-s="{seg.start}" data-n="{seg.end - seg.start}"'
                     f'{flags}>{escape(seg.text)}</span>')
    return mark_safe("".join(parts))  # noqa: S308 - every piece of text is escaped just above


@dataclass(frozen=True)
class FindingView:
    pk: int
    number: int
    start: int
    end: int
    quote: str
    severity: str
    severity_label: str
    note: str
    correction: str
    source_url: str


@dataclass(frozen=True)
class AuditView:
    """One response as an expert sees it: the conversation, the response as marked text and as formatted
    Markdown, and the expert's own findings on it."""

    turns: list[Turn]
    response_html: SafeString
    text_html: SafeString
    text_length: int
    findings: list[FindingView]
    severities: list[str] = field(default_factory=list)

    @property
    def is_multi_turn(self) -> bool:
        return len(self.turns) > 1

    @property
    def has_major(self) -> bool:
        return "major" in self.severities


def audit_view(audit: Audit) -> AuditView:
    target = AuditTarget.objects.select_related("response__prompt").only(
        "response__text", "response__prompt__text", "response__prompt__messages").get(pk=audit.target_id)
    text = target.response.text
    findings = list(AuditFinding.objects.filter(audit_id=audit.pk).order_by("start", "end", "pk"))
    views = [FindingView(pk=f.pk, number=i, start=f.start, end=f.end, quote=f.quote, severity=f.severity,
                         severity_label=f.get_severity_display(), note=f.note, correction=f.correction,
                         source_url=f.source_url) for i, f in enumerate(findings, start=1)]
    return AuditView(
        turns=conversation_turns(target.response.prompt.turns), response_html=render_markdown(text),
        text_html=render_segments(text_segments(text, findings)), text_length=len(text), findings=views,
        severities=[f.severity for f in findings],
    )


@dataclass(frozen=True)
class ExpertProgress:
    submitted: int  # this expert's audits in this plan
    available: int  # responses still needing an audit that this expert has not opened (the open one included)


def expert_progress(*, plan: AuditPlan, expert) -> ExpertProgress:
    submitted = Audit.objects.filter(plan=plan, expert=expert, status=Audit.Status.SUBMITTED).count()
    mine = Audit.objects.filter(target=OuterRef("pk"), expert=expert)
    available = (AuditTarget.objects.filter(plan=plan, load__lt=plan.audits_per_response).filter(~Exists(mine))
                 .count())
    open_now = Audit.objects.filter(plan=plan, expert=expert, status=Audit.Status.LEASED).count()
    return ExpertProgress(submitted=submitted, available=available + open_now)


@dataclass(frozen=True)
class Queue:
    key: str
    title: str  # the study's public title: what raters see too
    is_open: bool
    submitted: int
    open_now: bool


def expert_queues(*, expert) -> list[Queue]:
    """The audit queues this expert has worked in, newest first: their way back to unfinished work."""
    plans = (AuditPlan.objects.filter(audits__expert=expert).select_related("study")
             .annotate(submitted=Count("audits", filter=Q(audits__expert=expert, audits__status="submitted")),
                       open_now=Count("audits", filter=Q(audits__expert=expert, audits__status="leased")))
             .order_by("-updated_at").distinct())
    return [Queue(key=p.key, title=p.study.public_title, is_open=p.is_open, submitted=p.submitted,
                  open_now=p.open_now > 0) for p in plans]


# --- the researcher's audit page -------------------------------------------------------------------------

@dataclass(frozen=True)
class SystemProgress:
    name: str
    role: str
    selected: int
    audits_done: int
    audits_needed: int
    open_leases: int
    verdicts: dict[str, int]

    @property
    def percent(self) -> float:
        return 100.0 * self.audits_done / self.audits_needed if self.audits_needed else 0.0


def plan_progress(*, plan: AuditPlan) -> list[SystemProgress]:
    m = plan.audits_per_response
    rows = []
    targets = AuditTarget.objects.filter(plan=plan)
    for system in System.objects.filter(study_id=plan.study_id).order_by("-role", "name"):
        mine = targets.filter(response__system=system)
        agg = mine.aggregate(n=Count("pk", distinct=True), done=Count("audits", filter=Q(audits__status="submitted")),
                             leased=Count("audits", filter=Q(audits__status="leased")))
        verdicts = dict(Audit.objects.filter(target__in=mine, status=Audit.Status.SUBMITTED)
                        .values_list("verdict").annotate(n=Count("pk")).order_by())
        rows.append(SystemProgress(name=system.name, role=system.role, selected=agg["n"], audits_done=agg["done"],
                                   audits_needed=agg["n"] * m, open_leases=agg["leased"],
                                   verdicts={v: verdicts.get(v, 0) for v in Audit.Verdict.values}))
    return rows


@dataclass(frozen=True)
class ExpertRow:
    username: str
    submitted: int
    open_now: int
    findings: int
    last_submitted_at: object


def plan_experts(*, plan: AuditPlan) -> list[ExpertRow]:
    rows = (Audit.objects.filter(plan=plan).values("expert__username")
            .annotate(submitted=Count("pk", filter=Q(status="submitted"), distinct=True),
                      open_now=Count("pk", filter=Q(status="leased"), distinct=True),
                      findings=Count("findings", filter=Q(status="submitted")),
                      last=Max("submitted_at"))
            .order_by("-submitted", "expert__username"))
    return [ExpertRow(username=r["expert__username"], submitted=r["submitted"], open_now=r["open_now"],
                      findings=r["findings"], last_submitted_at=r["last"]) for r in rows]


# --- statistics inputs for the results pages ------------------------------------------------------------

VERDICT_CODES = {value: code for code, value in enumerate(audit_stats.VERDICTS)}
WINNER_OUTCOME = {Judgment.Winner.A: 1.0, Judgment.Winner.B: 0.0, Judgment.Winner.TIE: 0.5}


@dataclass(frozen=True, eq=False)
class AuditArrays:
    """A study's submitted audits and the crowd judgments of comparisons whose both responses were audited,
    as the arrays evalsite.stats.audits takes. Systems and categories are indexes into the name lists."""

    systems: list[str]
    reference: int | None  # index of the reference system, None when the study has none
    categories: list[str]  # "" is a category too (prompts without one)
    audits: audit_stats.Audits
    crowd: audit_stats.CrowdJudgments


def study_audit_arrays(*, study: Study) -> AuditArrays:
    """Two queries' worth of arrays: the audits (one row per submitted audit, with its number of findings) and
    the counted crowd judgments (not excluded, not gold) of comparisons whose two responses both have a
    submitted audit."""
    systems = list(System.objects.filter(study=study).order_by("-role", "name").values_list("pk", "name", "role"))
    system_index = {pk: i for i, (pk, _, _) in enumerate(systems)}
    reference = next((i for i, (_, _, role) in enumerate(systems) if role == System.Role.REFERENCE), None)
    categories = sorted(set(study.prompts.values_list("category", flat=True)))
    category_index = {name: i for i, name in enumerate(categories)}

    rows = list(Audit.objects.filter(plan__study=study, status=Audit.Status.SUBMITTED)
                .annotate(n_findings=Count("findings"))
                .values_list("target__response_id", "target__response__system_id", "verdict", "n_findings",
                             "expert_id", "target__response__prompt_id", "target__response__prompt__category")
                .order_by("pk"))
    audits = audit_stats.Audits(
        response=np.array([r[0] for r in rows], dtype=np.int64),
        system=np.array([system_index[r[1]] for r in rows], dtype=np.int64),
        verdict=np.array([VERDICT_CODES[r[2]] for r in rows], dtype=np.int64),
        findings=np.array([r[3] for r in rows], dtype=np.int64),
        expert=np.array([r[4] for r in rows], dtype=np.int64),
        prompt=np.array([r[5] for r in rows], dtype=np.int64),
        category=np.array([category_index[r[6]] for r in rows], dtype=np.int64),
    )

    audited = Audit.objects.filter(status=Audit.Status.SUBMITTED, plan__study=study)
    both = (Comparison.objects.filter(study=study)
            .filter(Exists(audited.filter(target__response_id=OuterRef("response_a_id"))))
            .filter(Exists(audited.filter(target__response_id=OuterRef("response_b_id")))))
    judged = list(Judgment.objects.filter(comparison__in=both, excluded=False, is_gold=False)
                  .values_list("comparison__response_a_id", "comparison__response_b_id",
                               "comparison__response_a__system_id", "comparison__response_b__system_id",
                               "winner", "comparison__prompt_id", "comparison__prompt__category",
                               "comparison_id")
                  .order_by("pk"))
    judgments = Judgments(
        system_a=np.array([system_index[r[2]] for r in judged], dtype=np.int64),
        system_b=np.array([system_index[r[3]] for r in judged], dtype=np.int64),
        outcome=np.array([WINNER_OUTCOME[r[4]] for r in judged], dtype=np.float64),
        prompt=np.array([r[5] for r in judged], dtype=np.int64),
        category=np.array([category_index[r[6]] for r in judged], dtype=np.int64),
        item=np.array([r[7] for r in judged], dtype=np.int64),
    )
    crowd = audit_stats.CrowdJudgments(judgments=judgments,
                                       response_a=np.array([r[0] for r in judged], dtype=np.int64),
                                       response_b=np.array([r[1] for r in judged], dtype=np.int64))
    return AuditArrays(systems=[name for _, name, _ in systems], reference=reference, categories=categories,
                       audits=audits, crowd=crowd)


@dataclass(frozen=True)
class StudyAuditReport(ToDict):
    systems: list[str]
    reference: int | None
    categories: list[str]
    report: audit_stats.AuditReport


def study_audit_report(*, study: Study, rule: str = "any", confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS,
                       seed: int = DEFAULT_SEED) -> StudyAuditReport:
    """Everything the results page shows about audits (see the module docstring)."""
    arrays = study_audit_arrays(study=study)
    report = audit_stats.audit_report(arrays.audits, arrays.crowd, arrays.reference, rule=rule,
                                      confidence=confidence, rounds=rounds, seed=seed)
    return StudyAuditReport(systems=arrays.systems, reference=arrays.reference, categories=arrays.categories,
                            report=report)


# --- CSV exports ------------------------------------------------------------------------------------------

AUDIT_COLUMNS = ("audit_id", "study", "prompt_id", "category", "system", "system_role", "response_id",
                 "expert", "verdict", "findings", "major_findings", "minor_findings", "comment", "leased_at",
                 "submitted_at", "server_seconds")
FINDING_COLUMNS = ("finding_id", "audit_id", "study", "prompt_id", "category", "system", "response_id",
                   "expert", "verdict", "severity", "start", "end", "quote", "note", "correction", "source_url",
                   "created_at")
CHUNK = 2000


def audit_rows(*, study: Study) -> Iterator[tuple]:
    """The audits CSV: one tuple per submitted audit in AUDIT_COLUMNS order, oldest first."""
    audits = (Audit.objects.filter(plan__study=study, status=Audit.Status.SUBMITTED)
              .annotate(n=Count("findings"),
                        n_major=Count("findings", filter=Q(findings__severity="major")),
                        n_minor=Count("findings", filter=Q(findings__severity="minor")))
              .values_list("pk", "target__response__prompt__external_id", "target__response__prompt__category",
                           "target__response__system__name", "target__response__system__role",
                           "target__response_id", "expert__username", "verdict", "n", "n_major", "n_minor",
                           "comment", "leased_at", "submitted_at", "server_seconds")
              .order_by("submitted_at", "pk"))
    for row in audits.iterator(chunk_size=CHUNK):
        pk, prompt_id, category, system, role, response_id, expert, *rest = row
        yield (pk, study.slug, prompt_id, category, system, role, response_id, expert, *rest)


def finding_rows(*, study: Study) -> Iterator[tuple]:
    """The findings CSV: one tuple per finding of a submitted audit in FINDING_COLUMNS order; `start` and
    `end` are offsets into the response text (Python string indexes, i.e. Unicode code points) and `quote`
    is exactly text[start:end]."""
    findings = (AuditFinding.objects.filter(audit__plan__study=study, audit__status=Audit.Status.SUBMITTED)
                .values_list("pk", "audit_id", "audit__target__response__prompt__external_id",
                             "audit__target__response__prompt__category", "audit__target__response__system__name",
                             "audit__target__response_id", "audit__expert__username", "audit__verdict", "severity",
                             "start", "end", "quote", "note", "correction", "source_url", "created_at")
                .order_by("audit__submitted_at", "audit_id", "start", "pk"))
    for row in findings.iterator(chunk_size=CHUNK):
        pk, audit_id, *rest = row
        yield (pk, audit_id, study.slug, *rest)
