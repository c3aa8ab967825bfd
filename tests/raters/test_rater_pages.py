"""The pages a crowd rater touches, through Django's test client: entry links, consent, the rating loop with
and without htmx, the end page for each provider, and the headers every rater page must carry."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evalsite.studies.models import Comparison, Prompt, Response, Study
from evalsite.studies.services import comparison_mark_gold
from raters.csp import CONTENT_SECURITY_POLICY
from raters.links import entry_links
from raters.models import Assignment, Judgment, Rater
from raters.services import rater_block
from tests.raters.conftest import make_live_study

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


# --- helpers (test_blinding uses them too) ---------------------------------------------------------------

def prolific_url(study: Study, pid: str = "PID-1") -> str:
    return f"/r/{study.rater_key}/prolific?" + urlencode(
        {"PROLIFIC_PID": pid, "STUDY_ID": "prolific-study", "SESSION_ID": f"session-{pid}"})


def mturk_url(study: Study, worker: str = "WORKER1", assignment: str = "ASSIGN1",
              submit_to: str = "https://workersandbox.mturk.com") -> str:
    return f"/r/{study.rater_key}/mturk?" + urlencode(
        {"workerId": worker, "assignmentId": assignment, "hitId": "HIT1", "turkSubmitTo": submit_to})


def enter(client, url: str) -> str:
    """Follow an entry link; returns the rater's token."""
    response = client.get(url)
    assert response.status_code == 303, response.content.decode()[:500]
    match = re.fullmatch(r"/r/t/([^/]+)/", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def start(client, url: str) -> str:
    token = enter(client, url)
    response = client.post(f"/r/t/{token}/consent", {"consent": "yes"})
    assert response.status_code == 303 and response.headers["Location"] == f"/r/t/{token}/rate"
    return token


def assignment_id(response) -> int:
    match = re.search(r'name="assignment" value="(\d+)"', response.content.decode())
    assert match, "no assignment in the page"
    return int(match.group(1))


def progress(response) -> tuple[int, int]:
    match = re.search(r"Comparison <strong>(\d+)</strong> of (\d+)", response.content.decode())
    assert match, "no progress in the page"
    return int(match.group(1)), int(match.group(2))


def submit(client, token: str, assignment: int, choice: str = "left", htmx: bool = False, **fields):
    data = {"assignment": assignment, "choice": choice, "active_seconds": "12.5", **fields}
    return client.post(f"/r/t/{token}/rate", data, **(HTMX if htmx else {}))


class _PageParts(HTMLParser):
    """What the CSP check needs from a page: its scripts, inline styles and event-handler attributes."""

    def __init__(self):
        super().__init__()
        self.scripts, self.style_tags, self.style_attrs, self.handlers = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs.get("src"))
        if tag == "style":
            self.style_tags += 1
        if "style" in attrs:
            self.style_attrs.append(tag)
        self.handlers += [name for name in attrs if name.startswith("on") or name.startswith("hx-on")]


def assert_rater_headers(response) -> None:
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    assert "X-Frame-Options" not in response  # MTurk frames these pages; frame-ancestors rules instead
    assert not response.cookies, f"a rater page set cookies: {list(response.cookies)}"
    body = response.content.decode()
    assert "{#" not in body and "{%" not in body and "{{" not in body, "template syntax leaked into the page"
    parts = _PageParts()
    parts.feed(body)
    assert all(parts.scripts), "an inline <script> (without src)"
    assert parts.style_tags == 0 and parts.style_attrs == [], "inline styles"
    assert parts.handlers == [], f"inline event handlers: {parts.handlers}"


# --- entry links --------------------------------------------------------------------------------------

@pytest.fixture
def study(db):
    return make_live_study(n_prompts=4, judgments_per_comparison=2, min_seconds_per_judgment=0)


def test_prolific_link_creates_the_rater_and_sends_them_to_the_welcome_page(client, study):
    token = enter(client, prolific_url(study, "PID-42"))
    rater = Rater.objects.get(token=token)
    assert (rater.study, rater.provider, rater.external_id) == (study, "prolific", "PID-42")
    assert rater.provider_data == {"STUDY_ID": "prolific-study", "SESSION_ID": "session-PID-42"}
    page = client.get(f"/r/t/{token}/")
    assert page.status_code == 200 and "Pick the better response." in page.content.decode()
    assert study.public_title in page.content.decode()


def test_coming_back_through_the_link_resumes_the_same_rater(client, study):
    first = start(client, prolific_url(study, "PID-7"))
    shown = assignment_id(client.get(f"/r/t/{first}/rate"))
    again = enter(client, prolific_url(study, "PID-7"))
    assert again == first and Rater.objects.count() == 1
    assert assignment_id(client.get(f"/r/t/{again}/rate")) == shown


def test_mturk_link_keeps_where_to_submit(client, study):
    token = enter(client, mturk_url(study, submit_to="https://www.mturk.com/"))
    rater = Rater.objects.get(token=token)
    assert (rater.provider, rater.external_id) == ("mturk", "WORKER1")
    assert rater.provider_data == {"assignmentId": "ASSIGN1", "hitId": "HIT1", "turkSubmitTo": "https://www.mturk.com"}


def test_generic_link_with_a_code_enters(client, study):
    token = enter(client, f"/r/{study.rater_key}/go?code=abc123")
    assert Rater.objects.get(token=token).external_id == "abc123"


def test_generic_link_without_a_code_asks_for_it(client, study):
    page = client.get(f"/r/{study.rater_key}/go")
    assert page.status_code == 200 and 'name="code"' in page.content.decode()
    blank = client.get(f"/r/{study.rater_key}/go?code=++")
    assert blank.status_code == 400 and "Please enter the code" in blank.content.decode()
    assert not Rater.objects.exists()


@pytest.mark.parametrize("drop", ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID"])
def test_prolific_link_missing_an_id_is_a_clear_error(client, study, drop):
    query = {"PROLIFIC_PID": "P1", "STUDY_ID": "S1", "SESSION_ID": "X1"}
    del query[drop]
    page = client.get(f"/r/{study.rater_key}/prolific?{urlencode(query)}")
    assert page.status_code == 400 and f"missing {drop}" in page.content.decode()
    assert not Rater.objects.exists()


def test_prolific_link_opened_with_its_placeholders_is_refused(client, study):
    page = client.get(f"/r/{study.rater_key}/prolific?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID=a&SESSION_ID=b")
    assert page.status_code == 400 and "placeholders" in page.content.decode()
    assert not Rater.objects.exists()


def test_mturk_link_missing_ids_is_a_clear_error(client, study):
    page = client.get(f"/r/{study.rater_key}/mturk?workerId=W1&assignmentId=A1")
    assert page.status_code == 400
    assert "missing hitId, turkSubmitTo" in page.content.decode()
    assert not Rater.objects.exists()


@pytest.mark.parametrize("submit_to", [
    "https://evil.example", "http://www.mturk.com", "https://www.mturk.com.evil.example",
    "https://www.mturk.com@evil.example", "javascript:alert(1)", "//www.mturk.com",
])
def test_mturk_link_with_a_foreign_submit_address_is_refused(client, study, submit_to):
    page = client.get(mturk_url(study, submit_to=submit_to))
    assert page.status_code == 400 and "not Mechanical Turk" in page.content.decode()
    assert not Rater.objects.exists()


def test_mturk_preview_shows_an_example_that_cannot_be_submitted(client, study):
    page = client.get(f"/r/{study.rater_key}/mturk?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=HIT1")
    html = page.content.decode()
    assert page.status_code == 200 and not Rater.objects.exists() and not Assignment.objects.exists()
    assert "Preview" in html and "Pick the better response." in html and "cut flowers" in html
    assert 'method="post"' not in html and "hx-post" not in html and 'name="assignment"' not in html
    assert re.search(r"<fieldset[^>]*\bdisabled\b", html)
    assert "Question number" not in html  # the study's own prompts stay hidden until the HIT is accepted
    assert_rater_headers(page)


def test_unknown_links_are_a_rater_404(client, study):
    for url in ["/r/nope/prolific?PROLIFIC_PID=a&STUDY_ID=b&SESSION_ID=c", "/r/nope/go?code=x",
                "/r/t/not-a-token/", "/r/t/not-a-token/rate", "/r/t/not-a-token/done", "/r/anything/else/here"]:
        page = client.get(url)
        assert page.status_code == 404, url
        assert "This link does not work" in page.content.decode()
        assert_rater_headers(page)
    assert client.post("/r/t/not-a-token/rate", {"choice": "left"}).status_code == 404


@pytest.mark.parametrize("status,says", [
    (Study.Status.DRAFT, "has not started yet"),
    (Study.Status.PAUSED, "is paused"),
    (Study.Status.CLOSED, "has closed"),
])
def test_a_study_not_live_says_so_politely_and_lets_nobody_in(client, study, status, says):
    Study.objects.filter(pk=study.pk).update(status=status)
    for url in [prolific_url(study), mturk_url(study), f"/r/{study.rater_key}/go?code=c1",
                f"/r/{study.rater_key}/mturk?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE"]:
        page = client.get(url)
        assert page.status_code == 200 and says in page.content.decode(), url
        assert_rater_headers(page)
    assert not Rater.objects.exists()


def test_the_links_a_researcher_pastes_lead_here(client, study):
    links = {link.kind: link.url.removeprefix("http://testserver") for link in entry_links(study, "http://testserver")}
    assert client.get(links["generic"]).status_code == 303
    assert client.get(links["prolific"]).status_code == 400  # opened as printed: placeholders left in
    filled = links["prolific"].replace("{{%PROLIFIC_PID%}}", "P9").replace("{{%STUDY_ID%}}", "S").replace(
        "{{%SESSION_ID%}}", "X")
    assert client.get(filled).status_code == 303
    mturk = links["mturk"] + "?" + urlencode({"workerId": "W", "assignmentId": "A", "hitId": "H",
                                              "turkSubmitTo": "https://www.mturk.com"})
    assert client.get(mturk).status_code == 303
    assert Rater.objects.count() == 3


# --- consent -----------------------------------------------------------------------------------------------

def test_rating_needs_consent_first(client, study):
    token = enter(client, prolific_url(study))
    assert client.get(f"/r/t/{token}/rate")["Location"] == f"/r/t/{token}/"
    refused = client.post(f"/r/t/{token}/consent", {})
    assert refused.status_code == 400 and "tick the box" in refused.content.decode()
    assert Rater.objects.get(token=token).consented_at is None
    assert client.post(f"/r/t/{token}/consent", {"consent": "yes"}).status_code == 303
    assert Rater.objects.get(token=token).consented_at is not None
    assert client.get(f"/r/t/{token}/rate").status_code == 200
    assert "Continue rating" in client.get(f"/r/t/{token}/").content.decode()


# --- the rating loop ----------------------------------------------------------------------------------------

def test_rating_loop_without_javascript_ends_with_the_completion_code(client, db):
    study = make_live_study(n_prompts=3, judgments_per_comparison=1, min_seconds_per_judgment=0)
    token = start(client, prolific_url(study))
    seen = []
    while True:
        page = client.get(f"/r/t/{token}/rate")
        if page.status_code == 303:
            assert page["Location"] == f"/r/t/{token}/done"
            break
        assert page.status_code == 200 and progress(page) == (len(seen) + 1, 3)
        assert "Response A" in page.content.decode() and "Response B" in page.content.decode()
        seen.append(assignment_id(page))
        answer = submit(client, token, seen[-1], choice=["left", "right", "tie"][len(seen) % 3])
        assert answer.status_code == 303 and answer["Location"] == f"/r/t/{token}/rate"
    assert len(set(seen)) == 3 and Judgment.objects.count() == 3
    assert Judgment.objects.filter(active_seconds__isnull=False).count() == 3
    done = client.get(f"/r/t/{token}/done")
    assert done.status_code == 200 and study.completion_code in done.content.decode()
    assert study.screened_out_code not in done.content.decode()


def test_htmx_submit_swaps_in_the_next_comparison_and_redirects_at_the_end(client, db):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, min_seconds_per_judgment=0)
    token = start(client, prolific_url(study))
    first = client.get(f"/r/t/{token}/rate")
    partial = submit(client, token, assignment_id(first), htmx=True)
    html = partial.content.decode()
    assert partial.status_code == 200
    assert '<section id="rating"' in html and "<html" not in html and "<head" not in html
    assert progress(partial) == (2, 2) and assignment_id(partial) != assignment_id(first)
    assert_rater_headers(partial)
    last = submit(client, token, assignment_id(partial), htmx=True)
    assert last.status_code == 200 and last["HX-Redirect"] == f"/r/t/{token}/done"
    assert Judgment.objects.count() == 2


def test_an_invalid_choice_is_refused_with_a_message_and_nothing_is_stored(client, study):
    token = start(client, prolific_url(study))
    shown = assignment_id(client.get(f"/r/t/{token}/rate"))
    for htmx in (False, True):
        page = submit(client, token, shown, choice="bogus", htmx=htmx, reason="kept reason")
        html = page.content.decode()
        assert page.status_code == 422 and "Choose Response A, Response B or tie." in html
        assert assignment_id(page) == shown and "kept reason" in html
        assert ("<html" in html) is not htmx
        assert_rater_headers(page)
    assert not Judgment.objects.exists()


def test_a_refused_submit_keeps_the_raters_choice(client, db):
    study = make_live_study(n_prompts=2, scale=Study.Scale.AB_TIE_STRENGTH, min_seconds_per_judgment=0)
    token = start(client, prolific_url(study))
    shown = assignment_id(client.get(f"/r/t/{token}/rate"))
    page = submit(client, token, shown, choice="right")  # strength missing
    html = page.content.decode()
    assert page.status_code == 422 and "slightly or much better" in html
    assert re.search(r'value="right" required checked', html)
    assert submit(client, token, shown, choice="right", strength="much").status_code == 303
    assert Judgment.objects.get().strength == "much"


def test_a_required_reason_is_asked_for(client, db):
    study = make_live_study(n_prompts=2, reason_mode=Study.ReasonMode.REQUIRED, min_seconds_per_judgment=0)
    token = start(client, prolific_url(study))
    page = client.get(f"/r/t/{token}/rate")
    assert re.search(r'<textarea[^>]*name="reason"[^>]*required', page.content.decode())
    refused = submit(client, token, assignment_id(page), choice="tie", reason="   ")
    assert refused.status_code == 422 and "give a short reason" in refused.content.decode()
    assert submit(client, token, assignment_id(page), choice="tie", reason="B is wrong").status_code == 303
    assert Judgment.objects.get().reason == "B is wrong"


def test_the_form_follows_the_studys_scale_and_reason_mode(client, db):
    bothbad = make_live_study(n_prompts=1, scale=Study.Scale.AB_TIE_BOTHBAD, reason_mode=Study.ReasonMode.NONE)
    html = client.get(f"/r/t/{start(client, prolific_url(bothbad))}/rate").content.decode()
    assert re.findall(r'name="choice" value="(\w+)"', html) == ["left", "right", "tie", "both_bad"]
    assert 'name="reason"' not in html and 'name="strength"' not in html
    strength = make_live_study(n_prompts=1, scale=Study.Scale.AB_TIE_STRENGTH)
    html = client.get(f"/r/t/{start(client, prolific_url(strength))}/rate").content.decode()
    assert re.findall(r'name="choice" value="(\w+)"', html) == ["left", "right", "tie"]
    assert re.findall(r'name="strength" value="(\w+)"', html) == ["slightly", "much"]
    assert re.search(r'<textarea[^>]*name="reason"', html) and "(optional)" in html


def test_a_submit_that_arrives_twice_records_one_judgment_and_both_get_the_next_comparison(client, study):
    token = start(client, prolific_url(study))
    shown = assignment_id(client.get(f"/r/t/{token}/rate"))
    first = submit(client, token, shown, htmx=True)
    second = submit(client, token, shown, htmx=True, choice="right")  # a second tab, a replay
    assert first.status_code == second.status_code == 200
    assert assignment_id(first) == assignment_id(second) != shown
    assert Judgment.objects.filter(assignment_id=shown).get().choice == "left"
    plain = [submit(client, token, assignment_id(first)) for _ in range(2)]  # a double click without JS
    assert [r.status_code for r in plain] == [303, 303]
    assert Judgment.objects.count() == 2


def test_a_submit_for_an_assignment_that_is_not_yours_shows_your_own(client, study):
    mine = start(client, prolific_url(study, "me"))
    theirs = start(client, prolific_url(study, "them"))
    their_assignment = assignment_id(client.get(f"/r/t/{theirs}/rate"))
    my_assignment = assignment_id(client.get(f"/r/t/{mine}/rate"))
    for value in (their_assignment, "", "12abc"):
        page = submit(client, mine, value)
        assert page.status_code == 422 and assignment_id(page) == my_assignment
    assert not Judgment.objects.exists()


def test_garbage_in_a_submit_is_refused_not_a_server_error(client, study):
    token = start(client, prolific_url(study))
    shown = assignment_id(client.get(f"/r/t/{token}/rate"))
    for value in ("99999999999999999999999", "-1", "0"):
        page = submit(client, token, value)
        assert page.status_code == 422 and assignment_id(page) == shown
    assert submit(client, token, shown, reason="fine\x00 reason", active_seconds="nan").status_code == 303
    judgment = Judgment.objects.get()
    assert judgment.reason == "fine reason" and judgment.active_seconds is None


def test_control_characters_in_a_link_are_refused(client, study):
    page = client.get(prolific_url(study, "pid\x00evil"))
    assert page.status_code == 400 and "not allowed" in page.content.decode()
    assert client.get(f"/r/{study.rater_key}/go?code=a%00b").status_code == 400
    assert not Rater.objects.exists()


def test_a_multi_turn_prompt_shows_the_conversation_with_roles(client, study):
    Prompt.objects.filter(study=study).update(text="", messages=[
        {"role": "user", "content": "Plan a trip to Lisbon."},
        {"role": "assistant", "content": "Sure, how many days?"},
        {"role": "user", "content": "Three days, **on foot**."},
    ])
    html = client.get(f"/r/t/{start(client, prolific_url(study))}/rate").content.decode()
    assert "The conversation so far" in html
    assert re.findall(r'<div class="turn-label">(\w+)</div>', html) == ["User", "Assistant", "User"]
    assert "<strong>on foot</strong>" in html


def test_model_output_is_rendered_as_safe_markdown(client, db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1)
    Response.objects.update(
        text="**bold** `code` <script>alert(1)</script> [x](javascript:alert(1))")
    html = client.get(f"/r/t/{start(client, prolific_url(study))}/rate").content.decode()
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert not re.search(r"href=\"\s*javascript:", html, re.I)


# --- the end ------------------------------------------------------------------------------------------------

def finish(client, study: Study, url: str) -> str:
    token = start(client, url)
    while (page := client.get(f"/r/t/{token}/rate")).status_code == 200:
        assert submit(client, token, assignment_id(page)).status_code == 303
    return token


def test_prolific_end_page_links_to_prolific_with_the_code(client, db):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, min_seconds_per_judgment=0)
    done = client.get(f"/r/t/{finish(client, study, prolific_url(study))}/done")
    html = done.content.decode()
    assert f'href="https://app.prolific.com/submissions/complete?cc={study.completion_code}"' in html
    assert f'id="completion-code">{study.completion_code}<' in html
    assert_rater_headers(done)


def test_prolific_end_page_uses_the_studys_completion_url(client, db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, provider_settings={
        "prolific_completion_url": "https://app.prolific.com/submissions/complete?cc=OLD&lang=en"})
    html = client.get(f"/r/t/{finish(client, study, prolific_url(study))}/done").content.decode()
    href = re.search(r'href="(https://app\.prolific\.com[^"]+)"', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(href).query) == {"lang": ["en"], "cc": [study.completion_code]}


def test_a_completion_url_that_is_not_https_falls_back_to_prolific(client, db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1,
                            provider_settings={"prolific_completion_url": "javascript:alert(1)"})
    html = client.get(f"/r/t/{finish(client, study, prolific_url(study))}/done").content.decode()
    assert "javascript:" not in html and "https://app.prolific.com/submissions/complete?cc=" in html


def test_mturk_end_page_posts_the_code_to_mturk(client, db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, min_seconds_per_judgment=0)
    token = finish(client, study, mturk_url(study, assignment="ASSIGN-9"))
    html = client.get(f"/r/t/{token}/done").content.decode()
    form = re.search(r'<form method="post" action="([^"]+)"', html)
    assert form and form.group(1) == "https://workersandbox.mturk.com/mturk/externalSubmit"
    assert 'name="assignmentId" value="ASSIGN-9"' in html
    assert f'name="completion_code" value="{study.completion_code}"' in html


def test_generic_end_page_shows_the_code(client, db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1)
    html = client.get(f"/r/t/{finish(client, study, f'/r/{study.rater_key}/go?code=zz')}/done").content.decode()
    assert study.completion_code in html and "prolific.com" not in html and "externalSubmit" not in html


def test_a_rater_screened_out_by_gold_gets_the_screened_out_code(client, db):
    study = make_live_study(n_prompts=3, judgments_per_comparison=1, gold_rate=1.0, gold_min_answered=1,
                            gold_accuracy_threshold=0.5, min_seconds_per_judgment=0)
    comparison_mark_gold(comparison=Comparison.objects.first(), expected="a")
    token = start(client, prolific_url(study))
    page = client.get(f"/r/t/{token}/rate")
    assignment = Assignment.objects.get(pk=assignment_id(page))
    assert assignment.is_gold
    wrong = "right" if assignment.left_is_a else "left"
    assert submit(client, token, assignment.pk, choice=wrong)["Location"] == f"/r/t/{token}/rate"
    assert client.get(f"/r/t/{token}/rate")["Location"] == f"/r/t/{token}/done"
    html = client.get(f"/r/t/{token}/done").content.decode()
    assert study.screened_out_code in html and study.completion_code not in html
    assert f"cc={study.screened_out_code}" in html
    assert client.get(f"/r/t/{token}/")["Location"] == f"/r/t/{token}/done"


def test_a_blocked_rater_mid_study_gets_the_screened_out_code(client, study):
    token = start(client, prolific_url(study))
    submit(client, token, assignment_id(client.get(f"/r/t/{token}/rate")))
    open_page = client.get(f"/r/t/{token}/rate")
    rater_block(rater=Rater.objects.get(token=token))
    late = submit(client, token, assignment_id(open_page), htmx=True)
    assert late["HX-Redirect"] == f"/r/t/{token}/done"
    html = client.get(f"/r/t/{token}/done").content.decode()
    assert study.screened_out_code in html and study.completion_code not in html


def test_an_empty_pool_before_any_judgment_says_so_without_a_code(client, db):
    study = make_live_study(n_prompts=1, judgments_per_comparison=1, min_seconds_per_judgment=0)
    finish(client, study, prolific_url(study, "early-bird"))
    token = start(client, prolific_url(study, "latecomer"))
    assert client.get(f"/r/t/{token}/rate")["Location"] == f"/r/t/{token}/done"
    html = client.get(f"/r/t/{token}/done").content.decode()
    assert "No comparisons available" in html and "return your submission on Prolific" in html
    assert study.completion_code not in html and study.screened_out_code not in html


def test_the_pool_running_out_after_some_work_still_gives_the_code(client, db):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, per_rater_cap=10, min_seconds_per_judgment=0)
    token = start(client, prolific_url(study, "a"))
    submit(client, token, assignment_id(client.get(f"/r/t/{token}/rate")))
    other = start(client, prolific_url(study, "b"))
    submit(client, other, assignment_id(client.get(f"/r/t/{other}/rate")))
    assert client.get(f"/r/t/{token}/rate")["Location"] == f"/r/t/{token}/done"
    assert study.completion_code in client.get(f"/r/t/{token}/done").content.decode()


def test_the_code_is_not_given_before_the_work_is_done(client, study):
    token = start(client, prolific_url(study))
    early = client.get(f"/r/t/{token}/done")
    assert early.status_code == 303 and early["Location"] == f"/r/t/{token}/rate"
    fresh = enter(client, prolific_url(study, "no-consent-yet"))
    assert client.get(f"/r/t/{fresh}/done")["Location"] == f"/r/t/{fresh}/"


def test_a_study_closed_midway_ends_with_the_code_for_work_done(client, study):
    token = start(client, prolific_url(study))
    page = client.get(f"/r/t/{token}/rate")
    submit(client, token, assignment_id(page))
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    assert client.get(f"/r/t/{token}/")["Location"] == f"/r/t/{token}/done"
    assert study.completion_code in client.get(f"/r/t/{token}/done").content.decode()
    idle = Rater.objects.create(study=study, provider="prolific", external_id="idle")  # entered, never rated
    html = client.get(f"/r/t/{idle.token}/done").content.decode()
    assert "This study has closed" in html and study.completion_code not in html


# --- headers and inline code on every page ----------------------------------------------------------------

def test_every_rater_page_sends_the_csp_and_has_no_inline_script_or_style(client, db):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, min_seconds_per_judgment=0,
                            scale=Study.Scale.AB_TIE_BOTHBAD)
    pages = [
        client.get(prolific_url(study)),
        client.get(f"/r/{study.rater_key}/go"),
        client.get(f"/r/{study.rater_key}/go?code="),
        client.get(f"/r/{study.rater_key}/prolific"),
        client.get(mturk_url(study, submit_to="https://evil.example")),
        client.get(f"/r/{study.rater_key}/mturk?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE"),
    ]
    token = enter(client, mturk_url(study))
    pages += [client.get(f"/r/t/{token}/"), client.post(f"/r/t/{token}/consent", {}),
              client.post(f"/r/t/{token}/consent", {"consent": "yes"})]
    rate = client.get(f"/r/t/{token}/rate")
    pages += [rate, submit(client, token, assignment_id(rate), choice=""),
              submit(client, token, assignment_id(rate), choice="", htmx=True),
              submit(client, token, assignment_id(rate), htmx=True)]
    last = pages[-1]
    pages += [submit(client, token, assignment_id(last)), client.get(f"/r/t/{token}/done"),
              client.get(f"/r/t/{token}/consent"), client.get("/r/nowhere")]
    assert {p.status_code for p in pages} == {200, 303, 400, 404, 405, 422}
    for page in pages:
        assert_rater_headers(page)


def test_one_rating_round_trip_costs_the_same_queries_in_a_small_and_a_large_study(client, db):
    def round_trip_queries(n_prompts: int, pid: str) -> int:
        study = make_live_study(n_prompts=n_prompts, judgments_per_comparison=1, min_seconds_per_judgment=0,
                                per_rater_cap=1000)
        token = start(client, prolific_url(study, pid))
        shown = assignment_id(client.get(f"/r/t/{token}/rate"))
        submit(client, token, shown, htmx=True)  # warm up: the rater has history, like most round trips
        shown = Assignment.objects.get(rater__token=token, status="leased").pk
        with CaptureQueriesContext(connection) as queries:
            assert submit(client, token, shown, htmx=True).status_code == 200
        return len(queries)

    assert round_trip_queries(3, "small") == round_trip_queries(60, "large")



def test_a_pause_keeps_the_raters_place_and_gives_no_code_yet(client, db):
    study = make_live_study(n_prompts=3, judgments_per_comparison=1, min_seconds_per_judgment=0)
    token = start(client, prolific_url(study))
    assert submit(client, token, assignment_id(client.get(f"/r/t/{token}/rate"))).status_code == 303
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
    Assignment.objects.filter(status=Assignment.Status.LEASED).delete()  # their open lease lapsed meanwhile
    paused = client.get(f"/r/t/{token}/done").content.decode()
    assert "paused" in paused and study.completion_code not in paused
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    assert client.get(f"/r/t/{token}/rate").status_code == 200  # back where they left off
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    Assignment.objects.filter(status=Assignment.Status.LEASED).delete()
    assert study.completion_code in client.get(f"/r/t/{token}/done").content.decode()


def test_the_progress_counter_does_not_stall_on_a_gold_comparison(client, db, monkeypatch):
    draws = iter([0.9, 0.1, 0.9, 0.1] + [0.9] * 20)  # the engine's gold draws: ordinary, gold, ordinary, gold...
    monkeypatch.setattr("raters.services.random.random", lambda: next(draws))
    study = make_live_study(n_prompts=6, judgments_per_comparison=1, min_seconds_per_judgment=0,
                            gold_rate=0.5, per_rater_cap=4)
    for comparison in study.comparisons.all()[:2]:
        comparison_mark_gold(comparison=comparison, expected="a")
    token = start(client, prolific_url(study))
    counters = []
    while (page := client.get(f"/r/t/{token}/rate")).status_code == 200:
        counters.append(progress(page))
        submit(client, token, assignment_id(page), choice="left")
    shown = [current for current, _ in counters]
    assert shown == list(range(1, len(shown) + 1)), counters  # one step per comparison, gold or not
    assert Judgment.objects.filter(is_gold=True).count() == 2 and len(shown) == 6
