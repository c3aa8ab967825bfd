"""Expert audits in the results: the crowd-vs-experts section of the page, `audits` in the results API, the
audits and findings CSVs (page, API, command), who may see them, and the cache moving on a new audit.

The data is the hand-built study of tests/audits (stored_study): a reference and a candidate on five prompts in
two categories, crowd judgments, submitted audits with findings, and noise that must not count (an excluded and
a gold judgment, an unsubmitted draft audit with a finding)."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.results import selectors
from evalsite.results.exports import AUDIT_EXPORT_COLUMNS, EXPORTS, FINDING_EXPORT_COLUMNS, csv_stream
from evalsite.results.serializers import StudyResultsSerializer
from evalsite.studies.models import Comparison, Response, Study, System
from raters.audits.models import Audit, AuditFinding
from raters.audits.selectors import AUDIT_COLUMNS, FINDING_COLUMNS, plan_for_study
from raters.audits.services import audit_claim, audit_plan_save, audit_submit, finding_add
from tests.audits.conftest import make_expert
from tests.audits.test_selectors import stored_study  # noqa: F401 - a fixture
from tests.factories import UserFactory
from tests.results.test_api import assert_matches

pytestmark = pytest.mark.django_db

API = "/api/v1/studies"
DANGEROUS = "=HYPERLINK(\"http://x\",\"y\")"


@pytest.fixture
def audited(stored_study):  # noqa: F811 - the fixture imported above
    """stored_study with the comparisons' judgment counters set as the rating engine keeps them (its helper
    records judgments without them; the results read them), and texts of different lengths after the flagged
    span, so the style features vary (findings keep their offsets)."""
    for i, response in enumerate(Response.objects.filter(prompt__study=stored_study).order_by("pk")):
        Response.objects.filter(pk=response.pk).update(text=response.text + " More." * (i % 4))
    for comparison in Comparison.objects.filter(study=stored_study):
        Comparison.objects.filter(pk=comparison.pk).update(judgments_done=comparison.judgments.count())
    return stored_study


def parse(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def submitted_audits(study: Study) -> int:
    return Audit.objects.filter(plan__study=study, status=Audit.Status.SUBMITTED).count()


def submitted_findings(study: Study) -> int:
    return AuditFinding.objects.filter(audit__plan__study=study, audit__status=Audit.Status.SUBMITTED).count()


# --- the page -----------------------------------------------------------------------------------------------

def test_the_page_shows_crowd_vs_experts_with_a_chart_and_tables(researcher_client, audited):
    html = researcher_client.get(reverse("results:page", args=[audited.slug])).content.decode()
    assert 'id="crowd-vs-experts"' in html and "Crowd vs experts" in html
    section = html[html.index('id="crowd-vs-experts"'):]
    assert '<svg' in section and 'id="crowd-expert-chart-title"' in section
    assert 'id="crowd-experts-table"' in section and 'id="crowd-experts-categories"' in section
    assert "“Won on style” is the share of a candidate's crowd wins" in section
    table = section[section.index('id="crowd-experts-table"'):section.index('id="crowd-experts-categories"')]
    # The hand-worked answers (tests/audits/test_stats): 7 of 11 judgments win or tie, 2 of 4 comparisons not
    # factually worse, 4 of 5 crowd wins on a response with a major error.
    assert "the-candidate" in table and "63.6%" in table and "50.0%" in table and "80.0%" in table
    assert "4 of 5 wins" in table
    categories = section[section.index('id="crowd-experts-categories"'):]
    assert "facts" in categories and "howto" in categories
    assert reverse("results:export", args=[audited.slug, "audits"]) in section
    assert reverse("results:export", args=[audited.slug, "findings"]) in section


def test_without_audits_the_page_has_a_one_line_note_linking_the_audit_plan(researcher_client, judged_study):
    html = researcher_client.get(reverse("results:page", args=[judged_study.slug])).content.decode()
    assert 'id="crowd-vs-experts"' not in html and "crowd-expert-chart" not in html
    assert 'id="crowd-vs-experts-note"' in html and "No expert factuality audits are planned" in html
    assert reverse("audit_admin:plan", args=[judged_study.slug]) in html


def test_a_plan_without_submitted_audits_still_shows_only_the_note(researcher_client, judged_study):
    audit_plan_save(study=judged_study, selection="all", audits_per_response=1)
    html = researcher_client.get(reverse("results:page", args=[judged_study.slug])).content.decode()
    assert "No expert audit has been submitted yet" in html and 'id="crowd-vs-experts"' not in html


def test_the_htmx_partial_carries_the_section_too(researcher_client, audited):
    html = researcher_client.get(reverse("results:page", args=[audited.slug]), HTTP_HX_REQUEST="true")
    assert 'id="crowd-vs-experts"' in html.content.decode() and "<html" not in html.content.decode()


# --- the API ------------------------------------------------------------------------------------------------

def test_the_results_api_carries_the_audit_report_in_the_declared_shape(api, audited):
    data = api.get(f"{API}/{audited.slug}/results/").json()
    audits = data["audits"]
    assert audits["systems"] == ["the-reference", "the-candidate", "unaudited"]
    assert audits["reference_name"] == "the-reference"
    report = audits["report"]
    assert report["n_audits"] == submitted_audits(audited)  # the draft is not counted
    (row,) = report["contrast"]
    assert (row["candidate_name"], row["n_comparisons"], row["n_judgments"]) == ("the-candidate", 4, 11)
    assert (row["won_on_style"]["count"], row["won_on_style"]["n"]) == (4, 5)
    assert [(r["category_name"], r["won_on_style"]["count"]) for r in report["contrast_by_category"]] == [
        ("facts", 3), ("howto", 1)]
    assert_matches(StudyResultsSerializer(), data)


def test_the_results_api_has_null_audits_when_there_are_none(api, judged_study):
    data = api.get(f"{API}/{judged_study.slug}/results/").json()
    assert data["audits"] is None
    assert_matches(StudyResultsSerializer(), data)


# --- the CSVs -----------------------------------------------------------------------------------------------

def test_the_export_columns_are_the_selectors_columns():
    assert tuple(c.name for c in AUDIT_EXPORT_COLUMNS) == AUDIT_COLUMNS
    assert tuple(c.name for c in FINDING_EXPORT_COLUMNS) == FINDING_COLUMNS


def test_the_page_serves_the_audits_csv_with_submitted_audits_only(researcher_client, audited):
    response = researcher_client.get(reverse("results:export", args=[audited.slug, "audits"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "private, no-store"
    assert f'{audited.slug}-audits-' in response["Content-Disposition"]
    data = body(response)
    assert data.split(b"\n", 1)[0].decode() == ",".join(AUDIT_COLUMNS)
    rows = parse(data)
    assert len(rows) == submitted_audits(audited) == 13
    assert {r["verdict"] for r in rows} == {"no_errors", "minor", "major", "not_checkable"}
    assert sum(int(r["findings"]) for r in rows) == 11
    assert all(int(r["findings"]) == int(r["major_findings"]) + int(r["minor_findings"]) for r in rows)


def test_the_findings_csv_has_offsets_and_the_quoted_text_of_submitted_audits_only(researcher_client,
                                                                                   audited):
    data = body(researcher_client.get(reverse("results:export", args=[audited.slug, "findings"])))
    assert data.split(b"\n", 1)[0].decode() == ",".join(FINDING_COLUMNS)
    rows = parse(data)
    assert len(rows) == submitted_findings(audited) == 11
    for row in rows:
        finding = AuditFinding.objects.select_related("audit__target__response").get(pk=int(row["finding_id"]))
        text = finding.audit.target.response.text
        assert text[int(row["start"]):int(row["end"])] == row["quote"] == "1889"
        assert row["response_id"] == str(finding.audit.target.response_id)
    assert "Answer" not in {r["quote"] for r in rows}  # the draft's finding


def test_audit_csv_cells_that_start_like_a_formula_are_escaped(researcher_client, audited):
    System.objects.filter(study=audited, name="the-candidate").update(name="=evil-model")
    Audit.objects.filter(plan__study=audited, status="submitted").update(comment="@cmd")
    AuditFinding.objects.filter(audit__plan__study=audited).update(note=DANGEROUS, correction="-2+3")
    audits = parse(body(researcher_client.get(reverse("results:export", args=[audited.slug, "audits"]))))
    assert {r["comment"] for r in audits} == {"'@cmd"}
    assert "'=evil-model" in {r["system"] for r in audits}
    findings = parse(body(researcher_client.get(reverse("results:export", args=[audited.slug, "findings"]))))
    assert {r["note"] for r in findings} == {"'" + DANGEROUS} and {r["correction"] for r in findings} == {"'-2+3"}
    # Numbers are never escaped.
    assert all(r["start"].isdigit() and r["end"].isdigit() for r in findings)


def test_the_api_serves_the_same_audit_and_finding_csvs(api, researcher_client, audited):
    for what in ("audits", "findings"):
        response = api.get(f"{API}/{audited.slug}/results/{what}.csv")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        page = body(researcher_client.get(reverse("results:export", args=[audited.slug, what])))
        assert body(response) == page


def test_the_command_writes_audits_and_findings(tmp_path, audited):
    for what, count in (("audits", submitted_audits(audited)), ("findings", submitted_findings(audited))):
        out = tmp_path / f"{what}.csv"
        call_command("export", audited.slug, "--what", what, "-o", str(out), stdout=io.StringIO())
        data = out.read_bytes()
        assert data == b"".join(csv_stream(EXPORTS[what], audited))
        assert len(parse(data)) == count


def test_the_command_help_names_the_audit_exports(capsys):
    with pytest.raises(SystemExit):
        call_command("export", "--help")
    text = capsys.readouterr().out
    assert "audits" in text and "findings" in text


# --- who may see them ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["audits", "findings"])
def test_only_researchers_get_the_audit_csvs(client, audited, what):
    url = reverse("results:export", args=[audited.slug, what])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(make_expert("expert-z"))  # an expert is not a researcher
    assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="nobody"))
    assert client.get(url).status_code == 403
    assert client.get(reverse("results:page", args=[audited.slug])).status_code == 403


@pytest.mark.parametrize("what", ["audits", "findings"])
def test_the_api_refuses_audit_csvs_without_a_researcher_token(audited, what):
    url = f"{API}/{audited.slug}/results/{what}.csv"
    assert APIClient().get(url).status_code == 401
    expert_client = APIClient()
    expert_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_expert('expert-y')).key}")
    assert expert_client.get(url).status_code == 403
    assert expert_client.get(f"{API}/{audited.slug}/results/").status_code == 403


# --- the cache ------------------------------------------------------------------------------------------------

def test_a_new_submitted_audit_changes_the_cached_results(api, audited):
    url = f"{API}/{audited.slug}/results/"
    before = api.get(url).json()["audits"]["report"]["n_audits"]
    version = selectors.study_version(study=audited)
    assert selectors.study_results(study=audited).from_cache  # the API's computation was kept

    plan = plan_for_study(study=audited)
    expert = make_expert("expert-c")
    audit = audit_claim(plan=plan, expert=expert).audit
    finding_add(plan=plan, expert=expert, audit_id=audit.pk, severity="major", note="wrong year",
                correction="1887", quote="1889")
    assert selectors.study_version(study=audited) == version  # a draft changes nothing
    audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="major")

    assert selectors.study_version(study=audited) != version
    results = selectors.study_results(study=audited)
    assert not results.from_cache
    assert results.to_dict()["audits"]["report"]["n_audits"] == before + 1
    assert api.get(url).json()["audits"]["report"]["n_audits"] == before + 1
