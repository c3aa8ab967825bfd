"""CSV exports: formula escaping, RFC 4180 quoting, BOM, streaming in constant memory, the export command."""
from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from evalsite.results import exports
from evalsite.results.exports import EXPORTS, Column, Export, ExportOptions, csv_stream, escape_text
from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System
from raters.models import Assignment, Judgment, Rater
from tests.factories import make_study_with_responses
from tests.results.conftest import judge, make_judged_study, make_rater

pytestmark = pytest.mark.django_db

DANGEROUS = ["=1+1", "+SUM(A1:A9)", "-2+3", "@cmd", "\tindented", "\rreturn", '=HYPERLINK("http://x","y")']


def parse(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def export_bytes(name: str, study: Study, **options) -> bytes:
    return b"".join(csv_stream(EXPORTS[name], study, ExportOptions(**options)))


# --- escaping -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", DANGEROUS)
def test_text_starting_like_a_formula_gets_a_leading_quote(value):
    assert escape_text(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "1+1", "", "'quoted", " =spaced", "email@example.org"])
def test_ordinary_text_is_left_alone(value):
    assert escape_text(value) == value


def test_formula_cells_from_raters_prompts_and_systems_are_escaped_in_the_judgments_export():
    study = make_study_with_responses(n_prompts=len(DANGEROUS), candidates=1)
    Prompt.objects.filter(study=study).update(category="=cat")
    System.objects.filter(study=study, role=System.Role.CANDIDATE).update(name="@evil-model")
    from evalsite.studies.services import comparisons_build

    comparisons_build(study=study)
    for i, (comparison, reason) in enumerate(zip(Comparison.objects.filter(study=study).order_by("pk"), DANGEROUS,
                                                 strict=True)):
        judge(comparison, make_rater(study, i), "a", reason=reason, excluded=True, excluded_reason="-blocked")
    rows = parse(export_bytes("judgments", study))
    assert [r["reason"] for r in rows] == ["'" + v for v in DANGEROUS]
    assert {r["category"] for r in rows} == {"'=cat"}
    assert "'@evil-model" in {r["system_left"] for r in rows} | {r["system_right"] for r in rows}
    assert {r["excluded_reason"] for r in rows} == {"'-blocked"}
    # No unescaped cell anywhere in the file starts like a formula.
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(exports._FORMULA_START), (column, cell)


def test_negative_numbers_in_numeric_columns_stay_numbers():
    column = Column("value", "float")
    assert column.converter()(-0.25) == "-0.25"
    assert Column("n", "int").converter() is None  # written as the int itself
    study = make_judged_study(n_prompts=10, candidates=2)
    rows = parse(export_bytes("summary", study))
    negatives = [r for r in rows if r["value"].startswith("-")]
    assert negatives, "the summary of this study has negative log-odds or coefficients"
    for r in negatives:
        float(r["value"])  # a number, not the text "'-..."


def test_text_metadata_in_json_columns_is_escaped_too():
    study = make_study_with_responses(n_prompts=1, candidates=1)
    Response.objects.filter(prompt__study=study).update(model_name="=evil", meta={"note": "x"})
    rows = parse(export_bytes("responses", study))
    assert {r["model"] for r in rows} == {"'=evil"}
    assert {r["meta"] for r in rows} == {'{"note": "x"}'}


# --- file format ----------------------------------------------------------------------------------------

def test_quotes_commas_and_line_breaks_round_trip():
    study = make_study_with_responses(n_prompts=1, candidates=1)
    from evalsite.studies.services import comparisons_build

    comparisons_build(study=study)
    reason = 'He said "no", then\nleft; naïve 東京 🎉'
    judge(Comparison.objects.get(study=study), make_rater(study, 1), "b", reason=reason)
    data = export_bytes("judgments", study)
    assert data.startswith(b"study,judgment_id,")
    assert data.count(b"\n") == 3  # the header, the row, and the line break quoted inside the reason
    assert b'"He said ""no"", then\nleft; ' in data
    assert parse(data)[0]["reason"] == reason


def test_bom_is_added_only_on_request():
    study = make_study_with_responses(n_prompts=1, candidates=1)
    assert not export_bytes("responses", study).startswith(exports.BOM)
    data = export_bytes("responses", study, bom=True)
    assert data.startswith(exports.BOM) and data[len(exports.BOM):].startswith(b"study,")


def test_judgments_export_names_the_shown_sides_the_winner_and_the_flags():
    study = make_study_with_responses(n_prompts=2, candidates=1, scale=Study.Scale.AB_TIE_BOTHBAD)
    from evalsite.studies.services import comparison_mark_gold, comparisons_build

    comparisons_build(study=study)
    first, second = Comparison.objects.filter(study=study).select_related("response_a__system",
                                                                          "response_b__system").order_by("pk")
    comparison_mark_gold(comparison=second, expected="b")
    second.refresh_from_db()
    rater = make_rater(study, 1, provider="mturk")
    judge(first, rater, "a", left_is_a=False, reason="better", server_seconds=12.3456, active_seconds=None,
          too_fast=True)
    judge(second, rater, "both_bad", left_is_a=True)
    one, two = parse(export_bytes("judgments", study))
    a, b = first.response_a.system.name, first.response_b.system.name
    assert (one["system_left"], one["system_right"], one["choice"], one["winner"]) == (b, a, "right", a)
    assert (one["provider"], one["rater"], one["server_seconds"], one["active_seconds"]) == (
        "mturk", rater.pseudonym, "12.346", "")
    assert (one["gold"], one["gold_expected"], one["gold_passed"], one["too_fast"], one["excluded"]) == (
        "false", "", "", "true", "false")
    assert (two["choice"], two["winner"], two["gold"], two["gold_expected"], two["gold_passed"]) == (
        "both_bad", "tie", "true", second.response_b.system.name, "false")
    assert one["prompt_id"] == first.prompt.external_id and one["comparison_id"] == str(first.pk)
    created = Judgment.objects.get(comparison=first).created_at
    shown = datetime.strptime(one["created_at_utc"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert len(one["created_at_utc"]) == len("2026-01-01 00:00:00.000")
    assert abs(shown - created) < timedelta(milliseconds=1)


def test_responses_export_has_one_row_per_response_with_its_provenance_and_style():
    study = make_study_with_responses(n_prompts=3, candidates=2)
    batch = ImportBatch.objects.create(study=study, kind="responses", filename="koala.jsonl", sha256="0" * 64,
                                       size_bytes=10, rows=3)
    Response.objects.filter(prompt__study=study, system__name="candidate-1").update(
        import_batch=batch, model_name="koala-13b", sampling_params={"temperature": 0.7}, seed=7,
        finish_reason="stop", completion_tokens=42, text="# Head\n\n- one\n- two\n\n**bold**")
    rows = parse(export_bytes("responses", study))
    assert len(rows) == Response.objects.filter(prompt__study=study).count() == 9
    koala = [r for r in rows if r["system"] == "candidate-1"]
    assert {(r["import_file"], r["model"], r["sampling_params"], r["seed"], r["finish_reason"],
             r["completion_tokens"]) for r in koala} == {("koala.jsonl", "koala-13b", '{"temperature": 0.7}', "7",
                                                         "stop", "42")}
    assert {(r["markdown_headers"], r["list_items"], r["bold_spans"]) for r in koala} == {("1", "2", "1")}
    assert [r["prompt_id"] for r in rows[:3]] == ["q0", "q0", "q0"] and rows[0]["system"] == "reference"


def test_a_new_export_kind_can_register_and_a_duplicate_name_is_refused(monkeypatch):
    monkeypatch.setattr(exports, "EXPORTS", dict(exports.EXPORTS))
    extra = Export(name="extra", title="Extra", description="test", columns=(Column("study"), Column("n", "int")),
                   rows=lambda study, options: iter([(study.slug, 1)]))
    exports.register_export(extra)
    with pytest.raises(ValueError, match="already registered"):
        exports.register_export(extra)
    study = make_study_with_responses(n_prompts=1)
    assert b"".join(csv_stream(exports.EXPORTS["extra"], study)) == f"study,n\n{study.slug},1\n".encode()


# --- streaming ------------------------------------------------------------------------------------------

def bulk_judgments(study: Study, n_raters: int, reason: str = "") -> int:
    """One judgment by each of ``n_raters`` raters on every comparison, inserted in bulk."""
    comparisons = list(Comparison.objects.filter(study=study).values_list("pk", "response_a_id", "response_b_id"))
    raters = Rater.objects.bulk_create([Rater(study=study, provider="generic", external_id=f"bulk-{i}",
                                              pseudonym=f"r-bulk{i:06d}") for i in range(n_raters)])
    now = timezone.now()
    assignments = [Assignment(comparison_id=c, rater=r, left_is_a=(i + j) % 2 == 0, status="submitted",
                              leased_at=now - timedelta(seconds=30), expires_at=now, closed_at=now)
                   for i, (c, _, _) in enumerate(comparisons) for j, r in enumerate(raters)]
    Assignment.objects.bulk_create(assignments, batch_size=2000)
    assignments = Assignment.objects.filter(comparison__study=study).order_by("pk").values_list(
        "pk", "comparison_id", "rater_id", "left_is_a")
    winners = {c: (a, b) for c, a, b in comparisons}
    judgments = []
    for k, (pk, comparison, rater, left_is_a) in enumerate(assignments):
        winner = ("a", "b", "tie")[k % 3]
        choice = "tie" if winner == "tie" else ("left" if (winner == "a") == left_is_a else "right")
        judgments.append(Judgment(
            assignment_id=pk, comparison_id=comparison, rater_id=rater, choice=choice, winner=winner,
            winner_response_id={"a": winners[comparison][0], "b": winners[comparison][1]}.get(winner),
            reason=reason, server_seconds=30.0, active_seconds=20.0))
    Judgment.objects.bulk_create(judgments, batch_size=2000)
    Comparison.objects.filter(study=study).update(judgments_done=n_raters)
    return len(judgments)


@pytest.fixture
def big_study(db):
    from evalsite.studies.services import comparisons_build

    study = make_study_with_responses(n_prompts=200, candidates=1)
    comparisons_build(study=study)
    total = bulk_judgments(study, n_raters=100, reason="A reason that a careful rater might write, " * 7)
    assert total == 20_000
    return study


def test_the_export_view_streams_many_chunks_rather_than_one_body(researcher_client, big_study):
    response = researcher_client.get(reverse("results:export", args=[big_study.slug, "judgments"]))
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    chunks = list(response.streaming_content)
    assert len(chunks) >= 20_000 // exports.ROWS_PER_CHUNK
    assert max(len(c) for c in chunks) < sum(len(c) for c in chunks) / 10
    assert len(parse(b"".join(chunks))) == 20_000


def test_streaming_20k_judgments_keeps_memory_flat_and_far_below_the_file_size(big_study, monkeypatch):
    # Smaller chunks than in production, so that 20,000 rows are many chunks; memory is about two database
    # chunks (the next is fetched while the last is still referenced), whatever their size.
    monkeypatch.setattr(exports.selectors, "EXPORT_CHUNK", 500)
    monkeypatch.setattr(exports, "COPY_CHUNK_BYTES", 100_000)
    stream = csv_stream(EXPORTS["judgments"], big_study, rows_per_chunk=500)
    next(stream)  # the header: the query has not run yet
    tracemalloc.start()
    try:
        total = early_peak = 0
        for i, chunk in enumerate(stream):
            total += len(chunk)  # written to nowhere, like a client that reads as it goes
            if i == 7:  # 4,000 rows in: eight database chunks read
                early_peak = tracemalloc.get_traced_memory()[1]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 8_000_000
    # Memory after 20,000 rows is what it was after 4,000: it does not grow with the export...
    assert peak < 1.25 * early_peak, (early_peak, peak)
    # ...and the file never exists in memory as a whole.
    assert peak < total / 4, (peak, total)


def test_rows_are_read_incrementally_from_the_database(monkeypatch, big_study):
    """PostgreSQL: one COPY whose rows arrive as they are produced; SQLite: a chunked cursor."""
    from django.db import connection
    from django.db.models.query import QuerySet

    seen = []
    if connection.vendor == "postgresql":
        import psycopg

        original_copy = psycopg.Cursor.copy

        def spy_copy(self, statement, *args, **kwargs):
            seen.append(statement.split()[0])
            return original_copy(self, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "copy", spy_copy)
        expected = ["COPY"]
    else:
        original = QuerySet.iterator

        def spy(self, chunk_size=None):
            seen.append(chunk_size)
            return original(self, chunk_size=chunk_size)

        monkeypatch.setattr(QuerySet, "iterator", spy)
        expected = [exports.selectors.EXPORT_CHUNK]
    chunks = 0
    for _ in csv_stream(EXPORTS["judgments"], big_study):
        chunks += 1
    assert seen == expected and chunks > 10


# --- downloads: page, API, command ----------------------------------------------------------------------

def test_download_has_a_csv_type_and_an_attachment_filename(researcher_client, judged_study):
    response = researcher_client.get(reverse("results:export", args=[judged_study.slug, "summary"]) + "?bom=1")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="{judged_study.slug}-summary-') and disposition.endswith('.csv"')
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content).startswith(exports.BOM)


def test_unknown_export_is_404_naming_the_choices(researcher_client, api, judged_study):
    assert researcher_client.get(f"/studies/{judged_study.slug}/results/ratings.csv").status_code == 404
    response = api.get(f"/api/v1/studies/{judged_study.slug}/results/nothing.csv")
    assert response.status_code == 404
    assert "judgments, responses, summary, audits, findings" in response.json()["detail"]


def test_export_downloads_are_for_researchers_only(client, outsider, judged_study):
    address = reverse("results:export", args=[judged_study.slug, "judgments"])
    response = client.get(address)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(outsider)
    assert client.get(address).status_code == 403


def test_api_export_with_a_token_streams_the_same_bytes_as_the_page(api, researcher_client, judged_study):
    from_api = api.get(f"/api/v1/studies/{judged_study.slug}/results/judgments.csv", HTTP_ACCEPT="text/csv")
    assert from_api.status_code == 200 and isinstance(from_api, StreamingHttpResponse)
    from_page = researcher_client.get(reverse("results:export", args=[judged_study.slug, "judgments"]))
    assert b"".join(from_api.streaming_content) == b"".join(from_page.streaming_content)


def test_api_export_without_credentials_is_401_and_for_non_researchers_403(judged_study):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    address = f"/api/v1/studies/{judged_study.slug}/results/judgments.csv"
    assert APIClient().get(address).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory()).key}")
    assert client.get(address).status_code == 403


def test_export_command_writes_the_file(tmp_path, judged_study):
    target = tmp_path / "judgments.csv"
    out = io.StringIO()
    call_command("export", judged_study.slug, "--what", "judgments", "-o", str(target), stdout=out)
    rows = parse(target.read_bytes())
    assert len(rows) == Judgment.objects.filter(comparison__study=judged_study).count()
    assert f"Wrote {len(rows)} judgments rows to {target}" in out.getvalue()
    assert not list(tmp_path.glob("*.part"))


def test_export_command_writes_to_standard_output_with_dash(judged_study):
    out = io.StringIO()
    call_command("export", judged_study.slug, "--what", "summary", "-o", "-", "--include-excluded", stdout=out,
                 stderr=io.StringIO())
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert next(r for r in rows if r["metric"] == "excluded_included")["value"] == "1"


def test_export_command_refuses_unknown_studies_and_kinds(tmp_path, judged_study):
    with pytest.raises(CommandError, match="No study with slug 'nope'"):
        call_command("export", "nope", "--what", "judgments", "-o", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export", judged_study.slug, "--what", "everything", "-o", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export", judged_study.slug, "--what", "judgments", "-o", str(tmp_path / "missing" / "x.csv"))


def test_a_failed_export_leaves_no_partial_file(tmp_path, judged_study, monkeypatch):
    def broken(*args, **kwargs):
        yield b"study\r\n"
        raise RuntimeError("database went away")

    monkeypatch.setattr(exports, "csv_stream", broken)
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        call_command("export", judged_study.slug, "--what", "judgments", "-o", str(target))
    assert list(tmp_path.iterdir()) == []


def test_the_export_path_does_not_load_scipy():
    # scipy is some 60 MB of the 150 MB an export of a million judgments may use (DESIGN.md budgets).
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, django; django.setup(); import evalsite.results.exports, evalsite.results.views; "
            "import evalsite.results.management.commands.export; print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "DEBUG": "true",
                                                     "DJANGO_SETTINGS_MODULE": "evalsite.settings"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_download_abandoned_halfway_leaves_the_database_connection_usable(big_study):
    stream = csv_stream(EXPORTS["judgments"], big_study)
    next(stream), next(stream)
    stream.close()  # what Django does when the client goes away mid-download
    assert Judgment.objects.filter(comparison__study=big_study).count() == 20_000
    assert len(parse(export_bytes("judgments", big_study))) == 20_000
