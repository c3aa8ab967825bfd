"""Reads for the results: a study's judgments as the arrays evalsite.stats works on, the statistics computed
from them (cached per study), and the row iterators the CSV exports stream.

Which judgments count
---------------------
- Gold judgments are quality checks with a known answer: they screen raters and never enter a statistic
  (they would also bias the rates, since gold comparisons are chosen for having a clear winner).
- Judgments excluded by quality control (rater screened out by gold accuracy, or blocked) are left out by
  default and kept in the database; ``include_excluded=True`` puts them back, for a sensitivity check.
- Too-fast judgments are flagged, not excluded, so they count unless quality control excluded them.

Caching
-------
Computing a 200k-judgment study takes a couple of seconds, so results are cached in Django's cache
(CACHE_URL) under a key that changes whenever the numbers could: the study, the toggle, a version of the
study's judgments, prompts and systems read in one cheap query (study_version: new judgments, exclusions
and restorations, category changes, submitted expert audits), and the systems' names, roles and metadata. Response texts need no place
in the key: neither the import nor generation changes the text of a response that has judgments. Results
older than MAX_AGE_SECONDS are recomputed anyway. The style features of judged responses are cached
separately (they never change), so a recomputation while a study is live reads only the new responses' texts.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, IntegerField, Q, Sum, Value, When
from django.utils import timezone

from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System
from raters.audits.models import Audit, AuditPlan
from raters.models import Judgment, Rater

if TYPE_CHECKING:
    from evalsite.stats import Judgments, StudySummary

# evalsite.stats (and so scipy, some 60 MB) is imported inside the functions that compute statistics, not
# here: the CSV exports read through this module too, and a million-judgment export must fit in 150 MB.

#: Bump when the cached object's shape changes, so a deploy never unpickles an old layout.
CACHE_SCHEMA = 2
#: Entries are keyed by version, so a stale one is never read; the timeout only frees memory.
CACHE_SECONDS = 24 * 3600
#: Results older than this are computed again even when the version has not moved: a safety net for a
#: change made outside the services that keep the version's counters (say, a judgment edited in the admin).
MAX_AGE_SECONDS = 15 * 60
#: Rows fetched per database round trip when reading judgments.
READ_CHUNK = 20_000
#: New responses read by id when computing style features; more than this are read in one streamed query.
STYLE_BATCH = 2000
#: The label of prompts without a category.
NO_CATEGORY = "(none)"
#: Metadata keys with a readable axis label; any other numeric key is plotted under its own name.
METADATA_LABELS = {
    "params_b": "Base model parameters (billions)",
    "imitation_tokens_m": "Imitation data (million tokens)",
    "imitation_examples": "Imitation examples",
    "training_tokens_b": "Pre-training tokens (billions)",
}


# --- systems --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SystemInfo:
    index: int  # position in the statistics' system list: the reference first, then by name
    id: int
    name: str
    role: str
    metadata: dict

    @property
    def numeric_metadata(self) -> dict[str, float]:
        """The metadata values that are numbers (booleans are not), for the scaling plots."""
        return {
            key: float(value) for key, value in (self.metadata or {}).items()
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        }


def study_system_infos(*, study: Study) -> list[SystemInfo]:
    rows = System.objects.filter(study=study).order_by("-role", "name").values_list("id", "name", "role", "metadata")
    return [SystemInfo(index=i, id=pk, name=name, role=role, metadata=metadata or {})
            for i, (pk, name, role, metadata) in enumerate(rows)]


def _reference_index(systems: list[SystemInfo]) -> int | None:
    return next((s.index for s in systems if s.role == System.Role.REFERENCE), None)


# --- what a study's results depend on -------------------------------------------------------------------

@dataclass(frozen=True)
class JudgmentCounts:
    """Counts over all of a study's judgments, taken when the results are computed."""

    total: int  # every judgment, gold and excluded included
    gold: int  # on gold comparisons: quality checks, never in the statistics
    excluded: int  # non-gold judgments excluded by quality control

    @property
    def counted(self) -> int:
        """Non-gold judgments not excluded: what the results use by default."""
        return self.total - self.gold - self.excluded


def study_version(*, study: Study) -> tuple:
    """A cheap fingerprint of everything a study's results are computed from, in one query that reads only
    the study's comparisons, raters, import batches and prompts - never the judgments table, whose size
    is every study's judgments together.

    - New judgments: the sum of the comparisons' ``judgments_done``, which the rating engine raises in the
      same transaction as each judgment it records (gold and excluded ones included).
    - Exclusions: quality control excludes and restores a rater's judgments together with the rater's
      status (screened out, blocked, active again), so the raters who are not active, by id, say which
      judgments are excluded.
    - Categories: the latest prompt import and the latest prompt edit.
    - Expert audits (the crowd-vs-experts section): the number and the highest id of the study's submitted
      audits. A submitted audit and its findings are final, so a new submission is the only change; the
      count also moves when an audit opened earlier (a lower id) is submitted later.
    A change made around these (a judgment edited in the admin), or the one case the statuses miss (an
    unblocked rater's judgment left excluded because another rater's open lease took its place meanwhile,
    with no judgment recorded since), is picked up by MAX_AGE_SECONDS.
    """
    comparisons, raters = Comparison._meta.db_table, Rater._meta.db_table
    batches, prompts = ImportBatch._meta.db_table, Prompt._meta.db_table
    audits, plans = Audit._meta.db_table, AuditPlan._meta.db_table
    sql = f"""SELECT
        (SELECT COALESCE(SUM(judgments_done), 0) FROM {comparisons} WHERE study_id = %s),
        (SELECT COUNT(*) FROM {comparisons} WHERE study_id = %s),
        (SELECT COALESCE(MAX(id), 0) FROM {comparisons} WHERE study_id = %s),
        (SELECT COUNT(*) FROM {raters} WHERE study_id = %s),
        (SELECT COALESCE(SUM(CASE WHEN status = %s THEN 0 ELSE 1 END), 0) FROM {raters} WHERE study_id = %s),
        (SELECT COALESCE(SUM(CASE WHEN status = %s THEN 0 ELSE id END), 0) FROM {raters} WHERE study_id = %s),
        (SELECT COALESCE(MAX(id), 0) FROM {batches} WHERE study_id = %s),
        (SELECT MAX(updated_at) FROM {prompts} WHERE study_id = %s),
        (SELECT COUNT(*) FROM {audits} WHERE status = %s AND plan_id IN (SELECT id FROM {plans} WHERE study_id = %s)),
        (SELECT COALESCE(MAX(id), 0) FROM {audits} WHERE status = %s
            AND plan_id IN (SELECT id FROM {plans} WHERE study_id = %s))"""
    active = Rater.Status.ACTIVE
    with connection.cursor() as cursor:
        submitted = Audit.Status.SUBMITTED
        cursor.execute(sql, [study.pk] * 4 + [active, study.pk, active, study.pk, study.pk, study.pk]
                       + [submitted, study.pk] * 2)
        row = cursor.fetchone()
    return tuple(str(v) for v in row)


# --- the judgments as arrays ----------------------------------------------------------------------------

@dataclass(frozen=True)
class StudyJudgments:
    """A study's judgments in the shape evalsite.stats wants, with the names its indices stand for."""

    judgments: Judgments
    systems: list[SystemInfo]
    reference: int | None
    categories: list[str]
    rater_pseudonyms: dict[int, str]
    counts: JudgmentCounts


# One small integer per judgment, computed in SQL, says everything but who and what was judged:
# outcome (0 b preferred, 1 tie, 2 a preferred) + 3 * choice (0 left, 1 right, 2 tie, 3 both bad)
# + 12 * strength (0 none, 1 slightly, 2 much) + 36 * excluded. Fewer bytes on the wire, no Python string
# per judgment.
_CODE = (
    Case(When(winner="a", then=Value(2)), When(winner="b", then=Value(0)), default=Value(1),
         output_field=IntegerField())
    + 3 * Case(When(choice="left", then=Value(0)), When(choice="right", then=Value(1)),
               When(choice="both_bad", then=Value(3)), default=Value(2), output_field=IntegerField())
    + 12 * Case(When(strength="slightly", then=Value(1)), When(strength="much", then=Value(2)), default=Value(0),
                output_field=IntegerField())
    + 36 * Case(When(excluded=True, then=Value(1)), default=Value(0), output_field=IntegerField())
)


def _int_rows(queryset, width: int, block: int = READ_CHUNK) -> np.ndarray:
    """A values_list of integers as an (n, width) int64 array. The query runs on a chunked (server-side,
    on PostgreSQL) cursor and is converted block by block, so neither the whole result nor a Python tuple
    per row is ever held at once; reading the cursor directly skips the ORM's per-value converters."""
    sql, params = queryset.query.sql_with_params()
    blocks = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(block):
            blocks.append(np.array(rows, dtype=np.int64).reshape(-1, width))
    return np.concatenate(blocks) if blocks else np.zeros((0, width), dtype=np.int64)


def study_judgments(*, study: Study, include_excluded: bool = False,
                    systems: list[SystemInfo] | None = None) -> StudyJudgments:
    """Read the study's non-gold judgments (excluded ones only when asked) into a stats ``Judgments``.

    A fixed number of reads, none per judgment: the judgments as integer codes; the comparisons they judge
    (prompt, category, the two responses and their systems); the style features of those responses
    (length in characters, Markdown headers, list items, bold), computed once per response and kept
    (response_styles); the raters' pseudonyms. Length is counted in characters rather than tokens because
    the systems of a study use different tokenizers.

    The side shown is derived rather than joined from the assignments: a left/right choice and the winner
    it resolved to say which response was on the left; a tie says nothing, but position bias only looks at
    decisive choices, the one statistic that uses the side.
    """
    from evalsite.stats import Judgments
    from evalsite.stats.data import STYLE_FEATURES

    systems = systems if systems is not None else study_system_infos(study=study)
    system_index = {s.id: s.index for s in systems}
    # Gold judgments from the comparisons' counter, which the engine keeps with every judgment it records.
    gold = Comparison.objects.filter(study=study, is_gold=True).aggregate(n=Sum("judgments_done"))["n"] or 0
    # Judgments before comparisons: every comparison judged by a row read here has judgments_done > 0 by then.
    # Excluded ones are read too, to be counted, and dropped here unless asked for.
    qs = Judgment.objects.filter(comparison__study=study, is_gold=False)
    rows = _int_rows(qs.annotate(code=_CODE).values_list("comparison_id", "rater_id", "code"), 3)
    excluded = rows[:, 2] >= 36
    counts = JudgmentCounts(total=len(rows) + gold, gold=gold, excluded=int(excluded.sum()))
    if not include_excluded:
        rows = rows[~excluded]
    comparison_id, rater, code = rows[:, 0], rows[:, 1], rows[:, 2] % 36
    outcome_code, choice_code, strength_code = code % 3, (code // 3) % 4, code // 12

    comparisons = list(
        Comparison.objects.filter(study=study, is_gold=False, judgments_done__gt=0).order_by("pk")
        .values_list("pk", "prompt_id", "response_a_id", "response_b_id", "response_a__system_id",
                     "response_b__system_id", "prompt__category")
        .iterator(chunk_size=READ_CHUNK))
    comp_ids = np.array([c[0] for c in comparisons], dtype=np.int64)
    where = np.searchsorted(comp_ids, comparison_id)
    if len(comparison_id) and (where.max() >= len(comp_ids) or np.any(comp_ids[where] != comparison_id)):
        raise RuntimeError("a judgment refers to a comparison outside the study's judged comparisons")
    comp_prompt = np.array([c[1] for c in comparisons], dtype=np.int64)
    comp_resp = np.array([(c[2], c[3]) for c in comparisons], dtype=np.int64).reshape(-1, 2)
    comp_sys = np.array([(system_index[c[4]], system_index[c[5]]) for c in comparisons], dtype=np.int64).reshape(-1, 2)
    category_names = sorted({c[6] for c in comparisons})
    comp_cat = None
    categories: list[str] = []
    if any(category_names):  # a breakdown by category only when some prompt has one
        cat_index = {name: i for i, name in enumerate(category_names)}
        comp_cat = np.array([cat_index[c[6]] for c in comparisons], dtype=np.int64)
        categories = [name or NO_CATEGORY for name in category_names]
    del comparisons

    style_a = style_b = None
    if len(comparison_id):
        used = np.unique(comp_resp[np.unique(where)].reshape(-1))
        features = response_styles(study=study, response_ids=used)
        style_a = features[np.searchsorted(used, comp_resp[where, 0])]
        style_b = features[np.searchsorted(used, comp_resp[where, 1])]

    strength = None
    if study.asks_strength:
        strength = np.where(outcome_code == 1, 0.0, strength_code.astype(np.float64))
        strength[(outcome_code != 1) & (strength_code == 0)] = np.nan  # decisive without strength: not asked
    # left_is_a: (left chose a) or (right chose b); ties get True, which no statistic reads (see docstring).
    left_is_a = np.where(choice_code == 0, outcome_code == 2, np.where(choice_code == 1, outcome_code == 0, True))
    judgments = Judgments(
        system_a=comp_sys[where, 0],
        system_b=comp_sys[where, 1],
        outcome=outcome_code / 2.0,
        prompt=comp_prompt[where],
        both_bad=choice_code == 3,
        rater=rater,
        left_is_a=left_is_a,
        strength=strength,
        category=comp_cat[where] if comp_cat is not None else None,
        item=comparison_id,
        style_a=style_a,
        style_b=style_b,
        style_names=STYLE_FEATURES,
    )
    pseudonyms = dict(Rater.objects.filter(study=study).values_list("pk", "pseudonym"))
    return StudyJudgments(judgments=judgments, systems=systems, reference=_reference_index(systems),
                          categories=categories, rater_pseudonyms=pseudonyms, counts=counts)


def response_styles(*, study: Study, response_ids: np.ndarray) -> np.ndarray:
    """(len(response_ids), 4) style features of the given (sorted, judged) responses, in their order.

    Computed once per response and kept in the cache for the study: a judged response's text never changes
    (the import and generation both refuse), so while a study is live a recomputation reads and parses only
    the responses judged for the first time. Up to STYLE_BATCH new responses are read by id; more (the
    first computation) in one streamed query over the study's judged comparisons.
    """
    from evalsite.stats import markdown_style
    from evalsite.stats.data import STYLE_FEATURES

    key = f"results:styles:{CACHE_SCHEMA}:{study.pk}:{study.created_at.isoformat() if study.created_at else ''}"
    known_ids, known = cache.get(key) or (np.zeros(0, np.int64), np.zeros((0, len(STYLE_FEATURES))))
    missing = np.setdiff1d(response_ids, known_ids, assume_unique=True)
    if len(missing):
        if len(missing) <= STYLE_BATCH:
            texts = Response.objects.filter(pk__in=missing.tolist()).values_list("pk", "text")
        else:
            judged = Comparison.objects.filter(study=study, judgments_done__gt=0)
            texts = (Response.objects.filter(prompt__study=study)
                     .filter(Q(pk__in=judged.values("response_a_id")) | Q(pk__in=judged.values("response_b_id")))
                     .values_list("pk", "text").iterator(chunk_size=STYLE_BATCH))
        new_ids, new = [], []
        wanted = set(missing.tolist())
        for pk, text in texts:
            if pk in wanted:
                new_ids.append(pk)
                new.append(markdown_style(text))
        order = np.argsort(np.concatenate([known_ids, np.array(new_ids, dtype=np.int64)]), kind="stable")
        known_ids = np.concatenate([known_ids, np.array(new_ids, dtype=np.int64)])[order]
        known = np.concatenate([known, np.array(new, dtype=np.float64).reshape(-1, len(STYLE_FEATURES))])[order]
        cache.set(key, (known_ids, known), CACHE_SECONDS)
    out = np.full((len(response_ids), len(STYLE_FEATURES)), np.nan)
    if len(known_ids):
        where = np.clip(np.searchsorted(known_ids, response_ids), 0, len(known_ids) - 1)
        found = known_ids[where] == response_ids
        out[found] = known[where[found]]
    return out


# --- results --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScalingPoint:
    candidate: int
    name: str
    value: float
    n: int
    win_or_tie: float
    low: float
    high: float
    method: str


@dataclass(frozen=True)
class ScalingSeries:
    """The win-or-tie rate of each candidate against a numeric metadata value (base-model size, imitation
    data), with its cluster-bootstrap interval: the shape of the figures in the imitation papers."""

    key: str
    label: str
    log_scale: bool
    points: list[ScalingPoint]


def scaling_series(summary: StudySummary, systems: list[SystemInfo]) -> list[ScalingSeries]:
    """One series per metadata key that at least two judged candidates carry as a number."""
    by_index = {s.index: s for s in systems}
    rows = [(h, by_index[h.candidate]) for h in summary.head_to_head if h.n]
    known = list(METADATA_LABELS)
    keys = sorted({key for _, system in rows for key in system.numeric_metadata},
                  key=lambda k: (known.index(k) if k in known else len(known), k))
    series = []
    for key in keys:
        points = []
        for h, system in rows:
            value = system.numeric_metadata.get(key)
            if value is None:
                continue
            interval = h.win_or_tie.bootstrap or h.win_or_tie.wilson
            points.append(ScalingPoint(candidate=h.candidate, name=system.name, value=value, n=h.n,
                                       win_or_tie=h.win_or_tie.rate, low=interval.low, high=interval.high,
                                       method=interval.method))
        if len(points) < 2:
            continue
        values = [p.value for p in points]
        # A log axis when the values span a factor of 10 or more (model sizes, data sizes usually do).
        log_scale = min(values) > 0 and max(values) / min(values) >= 10
        points.sort(key=lambda p: (p.value, p.name))
        series.append(ScalingSeries(key=key, label=METADATA_LABELS.get(key, key), log_scale=log_scale, points=points))
    return series


@dataclass
class StudyResults:
    """What the results page, the API and the summary export show for one study."""

    study_id: int
    slug: str
    include_excluded: bool
    counts: JudgmentCounts
    systems: list[SystemInfo]
    summary: StudySummary
    scaling: list[ScalingSeries]
    rater_pseudonyms: dict[int, str]
    computed_at: datetime
    compute_seconds: float
    # The expert audits beside the crowd (raters.audits.selectors.StudyAuditReport); None without any
    # submitted audit.
    audits: Any = None
    from_cache: bool = field(default=False, compare=False)

    @property
    def n_used(self) -> int:
        return self.summary.n_judgments

    @property
    def is_empty(self) -> bool:
        return self.summary.n_judgments == 0

    @property
    def reference(self) -> SystemInfo | None:
        ref = self.summary.reference
        return None if ref is None else self.systems[ref]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the API's body and the template's numbers (NaN as None)."""
        from evalsite.stats.results import jsonable

        summary = self.summary.to_dict()
        # to_dict names an index only where there is one; a study without a reference gets an explicit null.
        summary.setdefault("reference_name", None)
        summary["bradley_terry"].setdefault("reference_name", None)
        for row in summary["agreement"]["raters"]:
            row["pseudonym"] = self.rater_pseudonyms.get(row["rater"], "")
        return {
            "study": self.slug,
            "include_excluded": self.include_excluded,
            "judgments": {
                "used": self.summary.n_judgments,
                "excluded": self.counts.excluded,
                "excluded_included": self.include_excluded,
                "gold": self.counts.gold,
                "total": self.counts.total,
            },
            "computed_at": self.computed_at.isoformat(),
            "compute_seconds": round(self.compute_seconds, 3),
            "systems": [{"index": s.index, "name": s.name, "role": s.role, "metadata": s.metadata}
                        for s in self.systems],
            "scaling": jsonable(self.scaling),
            "summary": summary,
            "audits": audits_dict(self.audits),
        }


def audits_dict(report) -> dict[str, Any] | None:
    """The audit report as JSON, with each index into the system and category lists named beside it (as the
    summary does), so neither the page nor an API client has to look them up."""
    if report is None:
        return None
    data = report.to_dict()
    systems, categories = data["systems"], data["categories"]
    data["reference_name"] = None if data["reference"] is None else systems[data["reference"]]
    inner = data["report"]
    for row in inner["systems"]:
        row["system_name"] = systems[row["system"]]
    for row in inner["contrast"] + inner["contrast_by_category"]:
        row["candidate_name"] = systems[row["candidate"]]
        row["reference_name"] = systems[row["reference"]]
        row["category_name"] = (None if row["category"] is None
                                else categories[row["category"]] or NO_CATEGORY)
    return data


def _cache_key(study: Study, include_excluded: bool, version: tuple, systems: list[SystemInfo],
               rounds: int, seed: int) -> str:
    # str(scale): a Study just created holds the TextChoices member, one read back the plain string; their
    # reprs differ, and the same study must get the same key either way.
    fingerprint = repr((study.pk, study.created_at.isoformat() if study.created_at else "", str(study.scale), version,
                        [(s.id, s.name, s.role, sorted((s.metadata or {}).items(), key=lambda kv: kv[0]))
                         for s in systems], rounds, seed))
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    return f"results:{CACHE_SCHEMA}:{study.pk}:{int(include_excluded)}:{digest}"


def study_results(*, study: Study, include_excluded: bool = False, rounds: int | None = None,
                  seed: int | None = None, use_cache: bool = True) -> StudyResults:
    """The study's statistics, from the cache when nothing they depend on has changed (study_version)
    and they are younger than MAX_AGE_SECONDS.

    The version is read before the judgments: judgments arriving in between make the cached entry newer
    than its key says, never older, and the next request (seeing a new version) computes again. ``rounds``
    and ``seed`` default to the stats module's (1,000 bootstrap rounds, a fixed seed): reproducible numbers.
    """
    from evalsite.stats import summarize
    from evalsite.stats.bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED

    rounds = DEFAULT_ROUNDS if rounds is None else rounds
    seed = DEFAULT_SEED if seed is None else seed
    version = study_version(study=study)
    systems = study_system_infos(study=study)
    key = _cache_key(study, include_excluded, version, systems, rounds, seed)
    if use_cache:
        cached = cache.get(key)
        if cached is not None and (timezone.now() - cached.computed_at).total_seconds() <= MAX_AGE_SECONDS:
            cached.from_cache = True
            return cached
    started = time.perf_counter()
    data = study_judgments(study=study, include_excluded=include_excluded, systems=systems)
    summary = summarize(data.judgments, systems=[s.name for s in systems], reference=data.reference,
                        categories=data.categories, rounds=rounds, seed=seed)
    audits = study_audits(study=study, rounds=rounds, seed=seed)
    results = StudyResults(
        study_id=study.pk, slug=study.slug, include_excluded=include_excluded, counts=data.counts, systems=systems,
        summary=summary, scaling=scaling_series(summary, systems), rater_pseudonyms=data.rater_pseudonyms,
        computed_at=timezone.now(), compute_seconds=time.perf_counter() - started, audits=audits,
    )
    if use_cache:
        cache.set(key, results, CACHE_SECONDS)
    return results


def study_audits(*, study: Study, rounds: int, seed: int):
    """The study's audit report (raters.audits.selectors.study_audit_report), or None when no audit has been
    submitted. The crowd side always leaves out the judgments quality control excluded, whatever the
    results' toggle: the report's own selector reads only counted judgments."""
    if not Audit.objects.filter(plan__study=study, status=Audit.Status.SUBMITTED).exists():
        return None
    # Imported here: it loads evalsite.stats (see the note at the top of this module).
    from raters.audits.selectors import study_audit_report

    return study_audit_report(study=study, rounds=rounds, seed=seed)


# --- rows for the CSV exports ---------------------------------------------------------------------------

EXPORT_CHUNK = 2000


def study_judgments_for_export(*, study: Study):
    """Every judgment of the study, gold and excluded ones included, oldest first (the export adds its
    columns to this query)."""
    return Judgment.objects.filter(comparison__study=study).order_by("pk")


def response_export_rows(*, study: Study) -> Iterator[tuple]:
    """Every response of the study with its provenance, in prompt file order, from one streamed query:
    (id, prompt external id, category, system name, source, import file name, import batch id, generation
    job id, model name, sampling params, seed, finish reason, prompt tokens, completion tokens, latency ms,
    names model, meta, created at, updated at, text)."""
    return (
        Response.objects.filter(prompt__study=study).order_by("prompt__position", "prompt_id", "-system__role",
                                                              "system__name")
        .values_list("pk", "prompt__external_id", "prompt__category", "system__name", "source",
                     "import_batch__filename", "import_batch_id", "generation_job_id", "model_name",
                     "sampling_params", "seed", "finish_reason", "prompt_tokens", "completion_tokens", "latency_ms",
                     "names_model", "meta", "created_at", "updated_at", "text")
        .iterator(chunk_size=EXPORT_CHUNK)
    )
