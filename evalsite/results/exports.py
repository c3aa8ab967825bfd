"""CSV exports of a study: judgments, responses, and a summary of the results.

Every export is streamed in constant memory, whether to an HTTP client (StreamingHttpResponse) or a file
(``manage.py export``); the results page, the API and the command all call :func:`csv_stream`, so they
send the same bytes. Two ways of producing the rows:

- ``query`` exports (judgments): one SQL query yields every cell already formatted and escaped (the
  expressions below), so the database does the per-row work. On PostgreSQL the query runs inside
  ``COPY (...) TO STDOUT (FORMAT csv)``: the server writes the CSV and we pass its blocks on, which is what
  makes a million judgments take seconds (the budget is >= 100k rows/s). Elsewhere (SQLite) the same query
  is read in chunks (``QuerySet.iterator``) and written with the csv module, in the same dialect.
- ``rows`` exports (responses, summary): a Python generator yields cell values, which are converted per
  column kind (escaping, booleans, times, decimals) and written with the csv module.

The files open cleanly in a spreadsheet and in code:

- UTF-8, with a byte-order mark on request (``?bom=1``, ``--bom``) for Excel, which otherwise guesses a
  legacy encoding. RFC 4180 quoting: a cell holding a comma, a quote or a line break is quoted, quotes are
  doubled. Lines end with LF, as PostgreSQL's CSV output does (every spreadsheet and CSV reader accepts it).
- Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some
  also after a tab or carriage return) as a formula, and rater reasons, prompts and model output are
  untrusted text. Such *text* cells get a leading single quote (``'=1+1``), the escape OWASP recommends and
  spreadsheets display as the literal text. Numeric columns are never escaped, so ``-0.25`` stays a number;
  code reading the file can strip one leading quote from text cells that start with ``'`` followed by one
  of those characters.
- Booleans are ``true``/``false``, missing values empty, times in UTC as ``YYYY-MM-DD HH:MM:SS.mmm``.

Each kind of export (the expert audits and findings at the end too) registers itself with
:func:`register_export`; the command's ``--what`` choices, the URLs and the API schema all read :data:`EXPORTS`.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections, transaction
from django.db.models import Case, CharField, F, Func, QuerySet, TextField, Value, When
from django.db.models.functions import Concat, Left
from django.db.models.lookups import In
from django.utils import timezone

from evalsite.results import selectors
from evalsite.studies.models import Study

BOM = "\ufeff".encode()
#: Rows written per yielded chunk by the Python writer: tens of kilobytes, so memory stays flat.
ROWS_PER_CHUNK = 1000
#: Bytes gathered from PostgreSQL's COPY (which hands over one row at a time) before yielding a chunk.
COPY_CHUNK_BYTES = 256 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_text(value) -> str:
    """A text cell made safe for spreadsheets: a leading ' before = + - @ tab or carriage return."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


# --- the same formatting as SQL expressions, for query exports -------------------------------------------

def sql_escaped(expression):
    """:func:`escape_text` in SQL: ``'`` + the text when its first character starts a formula."""
    expression = F(expression) if isinstance(expression, str) else expression
    return Case(
        When(In(Left(expression, 1), list(_FORMULA_START)),
             then=Concat(Value("'"), expression, output_field=TextField())),
        default=expression, output_field=TextField(),
    )


def sql_bool(field: str):
    """true / false / empty (NULL) for a boolean column."""
    return Case(When(**{field: True}, then=Value("true")), When(**{field: False}, then=Value("false")),
                default=Value(None), output_field=CharField())


class UtcText(Func):
    """A timestamp as UTC text, ``YYYY-MM-DD HH:MM:SS.mmm`` (milliseconds), in the database."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection,
                           template="to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django keeps SQLite timestamps as UTC text; %% twice over: once for this template, once for the cursor.
        return self.as_sql(compiler, connection, template="strftime('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', "
                                                          "%(expressions)s)", **extra)


class Fixed3(Func):
    """A number as text with three decimals (NULL stays NULL), in the database."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="CAST(ROUND(CAST(%(expressions)s AS numeric), 3) AS text)",
                           **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection,
                           template="CASE WHEN %(expressions)s IS NULL THEN NULL ELSE printf('%%%%.3f', %(expressions)s) "
                                    "END", **extra)


# --- conversions for rows exports ---------------------------------------------------------------------

def _bool(value) -> str:
    return "" if value is None else ("true" if value else "false")


def _datetime(value) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _json(value) -> str:
    if value in (None, {}, []):
        return ""
    return escape_text(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _float(digits: int | None) -> Callable:
    def convert(value):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return ""
        if isinstance(value, bool):
            return _bool(value)
        if isinstance(value, int):
            return value
        return f"{value:.{digits}f}" if digits is not None else repr(float(value))
    return convert


@dataclass(frozen=True)
class Column:
    """One CSV column. ``kind``: text (escaped against formulas), json (as text), int, float, bool, datetime.

    For ``query`` exports the kind documents the column; the query formats the cell itself."""

    name: str
    kind: str = "text"
    digits: int | None = None  # decimals for a float column; None keeps full precision
    help: str = ""

    def converter(self) -> Callable | None:
        if self.kind == "text":
            return escape_text
        if self.kind == "json":
            return _json
        if self.kind == "bool":
            return _bool
        if self.kind == "datetime":
            return _datetime
        if self.kind == "float":
            return _float(self.digits)
        if self.kind == "int":
            return None  # csv writes ints as they are and None as an empty cell
        raise ValueError(f"column {self.name!r} has unknown kind {self.kind!r}")


@dataclass(frozen=True)
class ExportOptions:
    bom: bool = False
    include_excluded: bool = False  # for the summary: recompute with excluded judgments put back


@dataclass(frozen=True)
class Export:
    """A kind of export: its columns, and either ``rows`` (a generator of cell values in column order,
    converted per column kind) or ``query`` (a values_list QuerySet whose cells are final, formatted and
    escaped in SQL)."""

    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    rows: Callable[[Study, ExportOptions], Iterable[Sequence]] | None = None
    query: Callable[[Study, ExportOptions], QuerySet] | None = None

    def __post_init__(self):
        if (self.rows is None) == (self.query is None):
            raise ValueError(f"export {self.name!r} needs exactly one of rows or query")

    def filename(self, study: Study, when: datetime | None = None) -> str:
        stamp = timezone.localtime(when or timezone.now(), UTC).strftime("%Y%m%d-%H%M")
        return f"{study.slug}-{self.name}-{stamp}.csv"


#: Every export by name, in the order the page lists them.
EXPORTS: dict[str, Export] = {}


def register_export(export: Export) -> Export:
    if export.name in EXPORTS:
        raise ValueError(f"an export named {export.name!r} is already registered")
    EXPORTS[export.name] = export
    return export


def get_export(name: str) -> Export:
    try:
        return EXPORTS[name]
    except KeyError:
        raise KeyError(f"no export named {name!r}; choose one of: {', '.join(EXPORTS)}") from None


def csv_stream(export: Export, study: Study, options: ExportOptions = ExportOptions(), *,
               rows_per_chunk: int = ROWS_PER_CHUNK, on_rows: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The export as UTF-8 CSV, yielded in chunks (the header line comes first, alone).
    ``on_rows(n)`` is told how many rows each chunk holds (for a progress count).

    Nothing holds more than one chunk: rows go from the database cursor through the writer into a small
    buffer that is emptied at every chunk."""
    buffer = _Lines()
    writer = csv.writer(buffer, lineterminator="\r\n")  # see _Lines
    writer.writerow([c.name for c in export.columns])
    yield (BOM if options.bom else b"") + _drain(buffer)
    if export.query is not None:
        queryset = export.query(study, options)
        if connections[queryset.db].vendor == "postgresql":
            yield from _copy_chunks(queryset, on_rows)
            return
        rows, conversions = queryset.iterator(chunk_size=selectors.EXPORT_CHUNK), []
    else:
        rows = export.rows(study, options)
        conversions = [(i, f) for i, c in enumerate(export.columns) if (f := c.converter()) is not None]
    width = len(export.columns)
    writerow = writer.writerow
    pending = 0
    for row in rows:
        if conversions:
            row = list(row)
            for i, convert in conversions:
                row[i] = convert(row[i])
        if len(row) != width:
            raise ValueError(f"export {export.name!r} produced a row of {len(row)} cells for {width} columns")
        writerow(row)
        pending += 1
        if pending >= rows_per_chunk:
            if on_rows:
                on_rows(pending)
            pending = 0
            yield _drain(buffer)
    if pending:
        if on_rows:
            on_rows(pending)
        yield _drain(buffer)


def _copy_chunks(queryset: QuerySet, on_rows: Callable[[int], None] | None) -> Iterator[bytes]:
    """PostgreSQL writes the query's rows as CSV (COPY ... TO STDOUT); pass them on in ~256 KB chunks.
    libpq hands COPY data over one row at a time, so the blocks count the rows."""
    connection = connections[queryset.db]
    sql, params = queryset.query.sql_with_params()
    # A client that goes away mid-download closes this generator; psycopg then cancels the COPY, which
    # fails the statement. Inside a savepoint (or a transaction of its own) that failure is rolled back and
    # leaves the connection, and any transaction around it, usable.
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        # Django's psycopg cursor binds parameters on the client, which COPY (taking none itself) needs.
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            blocks: list = []
            size = 0
            for block in copy:
                blocks.append(block)
                size += len(block)
                if size >= COPY_CHUNK_BYTES:
                    if on_rows:
                        on_rows(len(blocks))
                    yield b"".join(blocks)
                    blocks, size = [], 0
            if blocks:
                if on_rows:
                    on_rows(len(blocks))
                yield b"".join(blocks)


class _Lines(list):
    """The csv writer's output: one string per row. Unlike io.StringIO, which keeps 4 bytes per character
    once any character is outside Latin-1, each row stays in its own compact string until it is encoded.

    The writer runs with CRLF line ends because it quotes only cells holding a character of the line end,
    and a lone carriage return inside a cell must be quoted too (PostgreSQL does); each row's final CRLF
    becomes LF here, as PostgreSQL writes it. Line breaks inside quoted cells are left as they are."""

    def write(self, line: str) -> None:
        self.append(line[:-2] + "\n")


def _drain(buffer: _Lines) -> bytes:
    data = "".join(buffer).encode("utf-8")
    buffer.clear()
    return data


# --- judgments ------------------------------------------------------------------------------------------

JUDGMENT_COLUMNS = (
    Column("study"),
    Column("judgment_id", "int"),
    Column("comparison_id", "int"),
    Column("prompt_id", help="the prompt's id in the imported file"),
    Column("category"),
    Column("system_left", help="the system whose response was shown on the left (as A)"),
    Column("system_right"),
    Column("choice", help="as shown to the rater: left, right, tie or both_bad"),
    Column("winner", help="the preferred system, or tie (both_bad is a tie)"),
    Column("strength", help="slightly or much, where the study asked"),
    Column("reason"),
    Column("rater", help="the rater's pseudonym"),
    Column("provider"),
    Column("server_seconds", "float", 3, help="from the lease to the submit, measured on the server"),
    Column("active_seconds", "float", 3, help="time the page was visible, as the page reported it"),
    Column("created_at_utc", "datetime"),
    Column("gold", "bool", help="a quality check with a known answer; never counted in the results"),
    Column("gold_expected", help="the expected answer of a gold comparison: a system, or tie"),
    Column("gold_passed", "bool"),
    Column("too_fast", "bool"),
    Column("excluded", "bool", help="left out of the results by quality control"),
    Column("excluded_reason"),
)


def judgments_query(study: Study, options: ExportOptions) -> QuerySet:
    """Every judgment of the study (gold and excluded ones too: their columns say so), oldest first, with
    each cell of JUDGMENT_COLUMNS computed in SQL."""
    system_a = F("comparison__response_a__system__name")
    system_b = F("comparison__response_b__system__name")
    cells = {
        "x_study": Value(escape_text(study.slug), output_field=CharField()),
        "x_prompt": sql_escaped("comparison__prompt__external_id"),
        "x_category": sql_escaped("comparison__prompt__category"),
        "x_left": sql_escaped(Case(When(assignment__left_is_a=True, then=system_a), default=system_b)),
        "x_right": sql_escaped(Case(When(assignment__left_is_a=True, then=system_b), default=system_a)),
        "x_winner": sql_escaped(Case(When(winner="a", then=system_a), When(winner="b", then=system_b),
                                     default=Value("tie"), output_field=CharField())),
        "x_reason": sql_escaped("reason"),
        "x_server": Fixed3("server_seconds"),
        "x_active": Fixed3("active_seconds"),
        "x_created": UtcText("created_at"),
        "x_gold": sql_bool("is_gold"),
        "x_expected": sql_escaped(Case(When(comparison__gold_expected="a", then=system_a),
                                       When(comparison__gold_expected="b", then=system_b),
                                       When(comparison__gold_expected="tie", then=Value("tie")),
                                       default=Value(""), output_field=CharField())),
        "x_passed": sql_bool("gold_passed"),
        "x_fast": sql_bool("too_fast"),
        "x_excluded": sql_bool("excluded"),
        "x_excluded_reason": sql_escaped("excluded_reason"),
    }
    return selectors.study_judgments_for_export(study=study).annotate(**cells).values_list(
        "x_study", "pk", "comparison_id", "x_prompt", "x_category", "x_left", "x_right", "choice", "x_winner",
        "strength", "x_reason", "rater__pseudonym", "rater__provider", "x_server", "x_active", "x_created",
        "x_gold", "x_expected", "x_passed", "x_fast", "x_excluded", "x_excluded_reason")


register_export(Export(
    name="judgments",
    title="Judgments",
    description="One row per judgment, gold and excluded ones included (their columns say so): who was shown "
                "left and right, the choice as shown, the winner, strength, reason, rater, time on task, flags.",
    columns=JUDGMENT_COLUMNS,
    query=judgments_query,
))


# --- responses ------------------------------------------------------------------------------------------

RESPONSE_COLUMNS = (
    Column("study"),
    Column("response_id", "int"),
    Column("prompt_id"),
    Column("category"),
    Column("system"),
    Column("source", help="import or generation"),
    Column("import_file"),
    Column("import_batch_id", "int"),
    Column("generation_job_id", "int"),
    Column("model"),
    Column("sampling_params", "json"),
    Column("seed", "int"),
    Column("finish_reason"),
    Column("prompt_tokens", "int"),
    Column("completion_tokens", "int"),
    Column("latency_ms", "int"),
    Column("names_model", help="the phrase where the response names a model, which can unblind raters"),
    Column("meta", "json"),
    Column("created_at_utc", "datetime"),
    Column("updated_at_utc", "datetime"),
    Column("length_chars", "int", help="style features, as the style-controlled model sees them"),
    Column("markdown_headers", "int"),
    Column("list_items", "int"),
    Column("bold_spans", "int"),
    Column("text"),
)


def _response_rows(study: Study, options: ExportOptions) -> Iterator[tuple]:
    # Imported here: evalsite.stats loads scipy, which the judgments export has no use for (memory budget).
    from evalsite.stats import markdown_style

    slug = study.slug
    for row in selectors.response_export_rows(study=study):
        text = row[-1]
        length, headers, lists, bold = markdown_style(text)
        yield (slug, *row[:-1], int(length), int(headers), int(lists), int(bold), text)


register_export(Export(
    name="responses",
    title="Responses",
    description="One row per response with its provenance (import file or generation job, model, sampling "
                "parameters, seed, finish reason, token counts) and the style features the style control uses.",
    columns=RESPONSE_COLUMNS,
    rows=_response_rows,
))


# --- summary --------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    Column("study"),
    Column("section", help="study, head_to_head, bradley_terry, style_control, position_bias, agreement, "
                           "by_category, scaling"),
    Column("system", help="the candidate (or rated system) the row is about"),
    Column("versus", help="the reference it is compared with"),
    Column("category"),
    Column("metric"),
    Column("value", "float"),
    Column("ci_low", "float"),
    Column("ci_high", "float"),
    Column("interval", help="how the interval was made: wilson, cluster-bootstrap-percentile, ..."),
    Column("n", "int", help="judgments (or pairs, items) behind the value"),
)


def summary_rows(results: selectors.StudyResults) -> Iterator[tuple]:
    """The results in long ("tidy") form: one row per number, with its interval where it has one."""
    data = results.to_dict()
    s = data["summary"]
    slug = results.slug
    conf = s["settings"]["confidence"]

    def row(section, metric, value, *, system="", versus="", category="", interval=None, n=None):
        low = high = method = None
        if interval:
            low, high, method = interval["low"], interval["high"], interval["method"]
        return (slug, section, system, versus, category, metric, value, low, high, method or "", n)

    judgments = data["judgments"]
    yield row("study", "judgments_used", judgments["used"])
    yield row("study", "judgments_excluded", judgments["excluded"])
    yield row("study", "excluded_included", int(results.include_excluded))
    yield row("study", "gold_judgments", judgments["gold"])
    yield row("study", "prompts", s["n_prompts"])
    yield row("study", "raters", s["n_raters"])
    yield row("study", "confidence", conf)
    yield row("study", "bootstrap_rounds", s["settings"]["rounds"])
    yield row("study", "bootstrap_seed", s["settings"]["seed"])

    for h in s["head_to_head"]:
        who = {"system": h["candidate_name"], "versus": h["reference_name"]}
        for metric in ("wins", "ties", "losses", "both_bad"):
            yield row("head_to_head", metric, h[metric], n=h["n"], **who)
        for metric, key in (("win", "win"), ("tie", "tie"), ("loss", "loss"), ("win_or_tie", "win_or_tie"),
                            ("both_bad_rate", "both_bad_rate"), ("preference", "preference")):
            prop = h[key]
            yield row("head_to_head", metric, prop["rate"], interval=prop["bootstrap"], n=prop["n"], **who)
            yield row("head_to_head", metric, prop["rate"], interval=prop["wilson"], n=prop["n"], **who)
        yield row("head_to_head", "sign_test_p", h["sign_test"]["p_value"], n=h["sign_test"]["n"], **who)
        if h["strength"]:
            yield row("head_to_head", "strength_mean", h["strength"]["mean"], interval=h["strength"]["bootstrap"],
                      n=h["strength"]["n"], **who)

    bt = s["bradley_terry"]
    for r in bt["ratings"]:
        yield row("bradley_terry", "elo", r["elo"], system=r["system_name"], interval=r["elo_interval"], n=r["n"])
        yield row("bradley_terry", "log_odds", r["rating"], system=r["system_name"], interval=r["interval"], n=r["n"])
        yield row("bradley_terry", "rank", r["rank"], system=r["system_name"], n=r["n"])

    style = s["style"]
    if style:
        for f in style["features"]:
            yield row("style_control", f"coefficient_{f['feature']}", f["coefficient"], interval=f["interval"],
                      n=style["n_used"])
        for c in style["candidates"]:
            who = {"system": c["candidate_name"], "versus": c["reference_name"], "n": c["n"]}
            yield row("style_control", "raw_preference", c["raw"], interval=c["raw_interval"], **who)
            yield row("style_control", "style_adjusted_preference", c["adjusted"], interval=c["adjusted_interval"],
                      **who)
            yield row("style_control", "style_effect", c["style_effect"], interval=c["style_effect_interval"], **who)
            for feature, value in c["mean_difference"].items():
                yield row("style_control", f"mean_difference_{feature}", value, **who)

    pb = s["position_bias"]
    yield row("position_bias", "left_share", pb["left_share"], interval=pb["wilson"], n=pb["n_decisive"])
    yield row("position_bias", "p_value", pb["test"]["p_value"], n=pb["n_decisive"])

    ag = s["agreement"]
    yield row("agreement", "percent_agreement", ag["percent"], n=ag["n_pairs"])
    yield row("agreement", "percent_agreement_without_ties", ag["percent_without_ties"], n=ag["n_pairs_without_ties"])
    yield row("agreement", "fleiss_kappa", ag["fleiss_kappa"], n=ag["fleiss_items"])
    yield row("agreement", "krippendorff_alpha", ag["krippendorff_alpha"], n=ag["n_items"])

    for c in s["by_category"]:
        who = {"system": c["candidate_name"], "versus": s["systems"][s["reference"]], "category": c["category_name"]}
        for metric in ("win", "tie", "loss", "win_or_tie"):
            yield row("by_category", metric, c[metric]["rate"], interval=c[metric]["wilson"], n=c["n"], **who)

    reference = results.reference.name if results.reference else ""
    for series in data["scaling"]:
        for p in series["points"]:
            yield row("scaling", f"win_or_tie_at_{series['key']}", p["win_or_tie"], system=p["name"], versus=reference,
                      interval=p, n=p["n"])
            yield row("scaling", series["key"], p["value"], system=p["name"])


def _summary_rows(study: Study, options: ExportOptions) -> Iterator[tuple]:
    yield from summary_rows(selectors.study_results(study=study, include_excluded=options.include_excluded))


register_export(Export(
    name="summary",
    title="Summary",
    description="The numbers of the results page in long form: one row per number with its interval and n.",
    columns=SUMMARY_COLUMNS,
    rows=_summary_rows,
))


# --- expert audits --------------------------------------------------------------------------------------
# The rows come from raters.audits.selectors (audit_rows, finding_rows: chunked generators of tuples in the
# order of its AUDIT_COLUMNS / FINDING_COLUMNS). That module is imported when an export runs, not here: it
# loads evalsite.stats, which the judgments export has no use for (memory budget). The column names below
# must equal the selector's; _audit_source checks it before the first row, so a drift fails loudly instead
# of shifting cells under the wrong header.

AUDIT_EXPORT_COLUMNS = (
    Column("audit_id", "int"),
    Column("study"),
    Column("prompt_id", help="the prompt's id in the imported file"),
    Column("category"),
    Column("system", help="the audited response's system (experts never saw it)"),
    Column("system_role", help="reference or candidate"),
    Column("response_id", "int"),
    Column("expert", help="the expert's username"),
    Column("verdict", help="no_errors, minor, major or not_checkable"),
    Column("findings", "int", help="flagged spans in the audit"),
    Column("major_findings", "int"),
    Column("minor_findings", "int"),
    Column("comment"),
    Column("leased_at", "datetime", help="when the expert opened the response (UTC)"),
    Column("submitted_at", "datetime"),
    Column("server_seconds", "float", 3, help="from the first lease to the submit, measured on the server"),
)

FINDING_EXPORT_COLUMNS = (
    Column("finding_id", "int"),
    Column("audit_id", "int"),
    Column("study"),
    Column("prompt_id"),
    Column("category"),
    Column("system"),
    Column("response_id", "int"),
    Column("expert"),
    Column("verdict", help="the audit's overall verdict"),
    Column("severity", help="minor or major"),
    Column("start", "int", help="offset of the span in the response text, in Unicode code points"),
    Column("end", "int", help="offset just after the span: quote == text[start:end]"),
    Column("quote", help="the flagged text exactly as it stands in the response"),
    Column("note", help="what is wrong"),
    Column("correction"),
    Column("source_url"),
    Column("created_at", "datetime"),
)


def _audit_source(columns: tuple[Column, ...], which: str) -> Callable[[Study, ExportOptions], Iterator[tuple]]:
    def rows(study: Study, options: ExportOptions) -> Iterator[tuple]:
        from raters.audits import selectors as audit_selectors

        expected = audit_selectors.AUDIT_COLUMNS if which == "audits" else audit_selectors.FINDING_COLUMNS
        if tuple(c.name for c in columns) != tuple(expected):
            raise RuntimeError(f"the {which} export's columns differ from raters.audits.selectors: {expected}")
        source = audit_selectors.audit_rows if which == "audits" else audit_selectors.finding_rows
        yield from source(study=study)
    return rows


register_export(Export(
    name="audits",
    title="Audits",
    description="One row per submitted expert audit (drafts are left out): the response audited, its system, "
                "the expert, the verdict and the number of findings by severity.",
    columns=AUDIT_EXPORT_COLUMNS,
    rows=_audit_source(AUDIT_EXPORT_COLUMNS, "audits"),
))

register_export(Export(
    name="findings",
    title="Findings",
    description="One row per span an expert flagged in a submitted audit: its offsets into the response text, "
                "the quoted text, severity, what is wrong, the correction and the source.",
    columns=FINDING_EXPORT_COLUMNS,
    rows=_audit_source(FINDING_EXPORT_COLUMNS, "findings"),
))
