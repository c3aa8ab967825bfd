"""`manage.py links STUDY` prints an `audit URL` line once the study has an audit plan, and it leads in."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from raters.audits.models import Audit, AuditPlan
from raters.audits.services import audit_plan_save
from raters.links import entry_links
from tests.audits.conftest import make_expert
from tests.factories import make_study_with_responses

pytestmark = pytest.mark.django_db


def run_links(slug: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("links", slug, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def study(db):
    return make_study_with_responses(n_prompts=2, slug="koala-vs-chatgpt", title="Koala vs ChatGPT")


def test_no_audit_line_before_the_study_has_an_audit_plan(study):
    out, _ = run_links(study.slug)
    assert [line.split(" ", 1)[0] for line in out.splitlines()] == ["generic", "prolific", "mturk"]


def test_the_audit_line_comes_last_with_the_plans_own_key(study, settings):
    settings.PUBLIC_BASE_URL = "https://eval.example.org/"
    plan = audit_plan_save(study=study, selection="all", audits_per_response=1).plan
    out, _ = run_links(study.slug)
    lines = out.splitlines()
    assert len(lines) == 4 and lines[-1] == f"audit https://eval.example.org/audit/{plan.key}/"
    assert study.slug not in lines[-1] and study.rater_key not in lines[-1]
    assert [link.kind for link in entry_links(study, "https://h")] == ["generic", "prolific", "mturk", "audit"]


def test_a_closed_audit_plan_is_noted_on_stderr_only(study):
    audit_plan_save(study=study, selection="all", audits_per_response=1, is_open=False)
    out, err = run_links(study.slug)
    assert "audit plan is closed" in err and "closed" not in out


def test_the_printed_audit_link_leads_an_expert_into_the_queue(client, study, settings):
    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    audit_plan_save(study=study, selection="all", audits_per_response=1)
    address = dict(line.split(" ", 1) for line in run_links(study.slug)[0].splitlines())["audit"]
    path = address.removeprefix("https://eval.example.org")
    assert client.get(path).status_code == 302  # to the login page first
    expert = make_expert("linked-expert")
    client.force_login(expert)
    assert client.get(path).status_code == 200
    assert Audit.objects.get(expert=expert).plan == AuditPlan.objects.get(study=study)
