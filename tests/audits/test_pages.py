"""The expert's pages through Django's test client: who gets in, the audit loop with and without htmx, refusals
shown in place, the headers, and what an expert cannot reach."""
from __future__ import annotations

import re

import pytest

from raters.audits.models import Audit, AuditFinding, AuditPlan
from raters.audits.services import audit_claim
from raters.audits.views import EXPERT_HEADERS
from tests.audits.conftest import make_audit_study, make_expert
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def audit_id(response) -> int:
    match = re.search(r'data-audit="(\d+)"', response.content.decode())
    assert match, "no audit in the page"
    return int(match.group(1))


def queue_url(plan: AuditPlan) -> str:
    return f"/audit/{plan.key}/"


@pytest.fixture
def plan(db):
    return make_audit_study(n_prompts=2, candidates=1, m=1)[1]


def test_anonymous_visitors_are_sent_to_log_in_and_come_back(client, plan):
    response = client.get(queue_url(plan))
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next=/audit/{plan.key}/"


def test_a_logged_in_user_outside_the_experts_group_gets_403(client, plan, researcher):
    client.force_login(UserFactory(username="not-an-expert"))
    assert client.get(queue_url(plan)).status_code == 403
    client.force_login(researcher)  # researchers are not experts either, unless also in the group
    assert client.get(queue_url(plan)).status_code == 403
    assert not Audit.objects.exists()


def test_an_unknown_key_is_404(expert_client, plan):
    response = expert_client.get("/audit/not-a-key/")
    assert response.status_code == 404 and b"does not work" in response.content


def test_the_queue_shows_one_response_with_the_prompt_and_the_forms(expert_client, plan, expert):
    response = expert_client.get(queue_url(plan))
    body = response.content.decode()
    audit = Audit.objects.get(expert=expert)
    assert response.status_code == 200
    assert audit.target.response.prompt.text in body and audit.target.response.text in body
    assert 'id="finding-form"' in body and 'id="verdict-form"' in body and "csrfmiddlewaretoken" in body
    assert f'data-audit="{audit.pk}"' in body
    for name, value in EXPERT_HEADERS.items():
        assert response[name] == value
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert "<script>" not in body and "style=" not in body and " on" + "click" not in body


def test_the_audit_loop_without_javascript(expert_client, plan, expert):
    page = expert_client.get(queue_url(plan))
    first = audit_id(page)
    text = Audit.objects.get(pk=first).target.response.text
    word = text.split()[0]
    added = expert_client.post(f"/audit/{plan.key}/{first}/findings/", {
        "quote": word, "severity": "major", "note": "Wrong word.", "correction": "Another word.",
        "source_url": "https://example.org/ref", "start": "", "end": ""})
    assert added.status_code == 303 and added["Location"] == f"/audit/{plan.key}/#findings"
    page = expert_client.get(queue_url(plan))
    assert audit_id(page) == first and "Wrong word." in page.content.decode()
    assert 'class="seg flag flag-major"' in page.content.decode()
    done = expert_client.post(f"/audit/{plan.key}/{first}/submit/", {"verdict": "major", "comment": "Bad."})
    assert done.status_code == 303 and done["Location"] == queue_url(plan)
    second = audit_id(expert_client.get(queue_url(plan)))
    assert second != first
    assert Audit.objects.get(pk=first).verdict == "major" and AuditFinding.objects.get().audit_id == first


def test_the_audit_loop_with_htmx_swaps_the_next_response_in(expert_client, plan, expert):
    first = audit_id(expert_client.get(queue_url(plan)))
    text = Audit.objects.get(pk=first).target.response.text
    added = expert_client.post(f"/audit/{plan.key}/{first}/findings/", {
        "quote": text[:6], "start": "0", "end": "6", "severity": "minor", "note": "n", "correction": "c"}, **HTMX)
    assert added.status_code == 200 and audit_id(added) == first
    assert '<section id="audit"' in added.content.decode() and "<html" not in added.content.decode()
    assert added["Vary"].count("HX-Request") == 1
    answer = expert_client.post(f"/audit/{plan.key}/{first}/submit/", {"verdict": "minor"}, **HTMX)
    assert answer.status_code == 200 and audit_id(answer) != first
    seen = {first}
    while 'data-audit="' in answer.content.decode():  # the rest of the queue: 4 responses in all
        current = audit_id(answer)
        assert current not in seen
        seen.add(current)
        answer = expert_client.post(f"/audit/{plan.key}/{current}/submit/", {"verdict": "no_errors"}, **HTMX)
        assert answer.status_code == 200
    assert len(seen) == 4 and "no more responses for you" in answer.content.decode()


def test_a_refused_finding_is_shown_in_place_with_the_input_kept(expert_client, plan):
    first = audit_id(expert_client.get(queue_url(plan)))
    answer = expert_client.post(f"/audit/{plan.key}/{first}/findings/", {
        "quote": "not in the text at all", "severity": "major", "note": "my note", "correction": "fix"}, **HTMX)
    body = answer.content.decode()
    assert answer.status_code == 422 and 'id="finding-error"' in body and "does not appear" in body
    assert "my note" in body and 'value="major" required checked' in body
    assert not AuditFinding.objects.exists()


def test_a_refused_verdict_says_why(expert_client, plan):
    first = audit_id(expert_client.get(queue_url(plan)))
    answer = expert_client.post(f"/audit/{plan.key}/{first}/submit/", {"verdict": "major"})
    assert answer.status_code == 422 and "Flag at least one" in answer.content.decode()
    assert Audit.objects.get(pk=first).status == Audit.Status.LEASED


def test_verdicts_that_do_not_fit_the_findings_are_disabled(expert_client, plan):
    first = audit_id(expert_client.get(queue_url(plan)))
    text = Audit.objects.get(pk=first).target.response.text
    page = expert_client.post(f"/audit/{plan.key}/{first}/findings/", {
        "quote": text[:4], "start": "0", "end": "4", "severity": "major", "note": "n", "correction": "c"}, **HTMX)
    body = page.content.decode()
    enabled = set(re.findall(r'name="verdict" value="(\w+)" required>', body))
    assert enabled == {"major"}


def test_a_finding_can_be_deleted_from_the_page(expert_client, plan):
    first = audit_id(expert_client.get(queue_url(plan)))
    text = Audit.objects.get(pk=first).target.response.text
    expert_client.post(f"/audit/{plan.key}/{first}/findings/", {
        "quote": text[:4], "start": "0", "end": "4", "severity": "minor", "note": "n", "correction": "c"})
    finding = AuditFinding.objects.get()
    answer = expert_client.post(f"/audit/{plan.key}/{first}/findings/{finding.pk}/delete/", {}, **HTMX)
    assert answer.status_code == 200 and not AuditFinding.objects.exists()


def test_forms_need_the_csrf_token(plan, expert):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)
    first = audit_id(client.get(queue_url(plan)))
    assert client.post(f"/audit/{plan.key}/{first}/submit/", {"verdict": "no_errors"}).status_code == 403
    assert Audit.objects.get(pk=first).status == Audit.Status.LEASED


def test_the_home_page_lists_the_queues_the_expert_worked_in(expert_client, plan, expert):
    assert "not audited any responses yet" in expert_client.get("/audit/").content.decode()
    expert_client.get(queue_url(plan))
    body = expert_client.get("/audit/").content.decode()
    assert plan.key in body and plan.study.public_title in body and "one in progress" in body


# --- what an expert cannot reach ------------------------------------------------------------------------------

def test_an_expert_cannot_open_researcher_pages_results_or_the_api(expert_client, plan):
    slug = plan.study.slug
    for url in ["/studies/", f"/studies/{slug}/", f"/studies/{slug}/audits/", f"/studies/{slug}/raters/",
                f"/studies/{slug}/raters/links/", f"/studies/{slug}/comparisons/", f"/studies/{slug}/prompts/",
                f"/studies/{slug}/results/", f"/api/v1/studies/{slug}/", f"/api/v1/studies/{slug}/results/"]:
        response = expert_client.get(url)
        assert response.status_code in (403, 404), (url, response.status_code)
    assert expert_client.get("/admin/").status_code == 302  # to the admin's own login: not staff


def test_an_expert_cannot_touch_another_experts_audit_or_another_studys(expert_client, plan, expert):
    other_expert = make_expert("someone-else")
    theirs = audit_claim(plan=plan, expert=other_expert).audit
    for url in (f"/audit/{plan.key}/{theirs.pk}/submit/", f"/audit/{plan.key}/{theirs.pk}/findings/"):
        assert expert_client.post(url, {"verdict": "no_errors", "quote": "x", "severity": "minor",
                                        "note": "n", "correction": "c"}).status_code == 404
    _, other_plan = make_audit_study(n_prompts=1, m=1)
    mine = audit_id(expert_client.get(queue_url(plan)))
    # The audit exists, but not in the other study's queue: the key and the audit must belong together.
    assert expert_client.post(f"/audit/{other_plan.key}/{mine}/submit/", {"verdict": "no_errors"}).status_code == 404
    assert Audit.objects.get(pk=theirs.pk).status == Audit.Status.LEASED
    assert Audit.objects.get(pk=mine).status == Audit.Status.LEASED


def test_researcher_audit_page_creates_the_plan_and_shows_the_link(researcher_client, settings):
    from tests.factories import make_study_with_responses

    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    study = make_study_with_responses(n_prompts=4, candidates=1)
    page = researcher_client.get(f"/studies/{study.slug}/audits/")
    assert page.status_code == 200 and "Plan the audits" in page.content.decode()
    answer = researcher_client.post(f"/studies/{study.slug}/audits/", {
        "selection": "sample", "sample_size": "", "audits_per_response": "2", "lease_ttl_seconds": "3600"})
    assert answer.status_code == 200 and "A sample needs its size" in answer.content.decode()
    assert not AuditPlan.objects.exists()
    answer = researcher_client.post(f"/studies/{study.slug}/audits/", {
        "selection": "sample", "sample_size": "2", "sample_seed": "5", "audits_per_response": "2",
        "lease_ttl_seconds": "3600", "is_open": "on", "instructions": "Check **numbers**."})
    assert answer.status_code == 302
    plan = AuditPlan.objects.get(study=study)
    assert (plan.sample_size, plan.sample_seed, plan.audits_per_response) == (2, 5, 2)
    assert plan.targets.count() == 4
    page = researcher_client.get(f"/studies/{study.slug}/audits/").content.decode()
    assert f"https://eval.example.org/audit/{plan.key}/" in page and "4 responses selected" in page
    detail = researcher_client.get(f"/studies/{study.slug}/").content.decode()
    assert f'href="/studies/{study.slug}/audits/"' in detail


def test_researcher_audit_page_is_for_researchers_only(expert_client, outsider, client, plan):
    assert expert_client.get(f"/studies/{plan.study.slug}/audits/").status_code == 403
    assert expert_client.post(f"/studies/{plan.study.slug}/audits/", {"selection": "all"}).status_code == 403
