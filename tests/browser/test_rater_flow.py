"""A crowd rater in a real browser: Prolific link, instructions, consent, rating with the keyboard, the code."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evalsite.studies.models import Study
from raters.models import Judgment, Rater
from tests.raters.conftest import make_live_study
from tests.raters.test_rater_pages import prolific_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def csp_watch(page) -> list[str]:
    """Collect CSP violations and console errors: htmx and rate.js must run under the page's policy."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def consent_and_start(page) -> None:
    page.get_by_label("I have read the instructions").check()
    with page.expect_navigation():  # until the rating page (and its deferred scripts) has loaded
        page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/r/t/[^/]+/rate$"))


def test_a_prolific_rater_rates_with_the_keyboard_and_gets_the_completion_code(live_server, page):
    study = make_live_study(n_prompts=4, judgments_per_comparison=1, min_seconds_per_judgment=0,
                            scale=Study.Scale.AB_TIE_BOTHBAD,
                            instructions="Judge **correctness** first, then helpfulness.")
    problems = csp_watch(page)
    page.goto(live_server.url + prolific_url(study, "keyboard-rater"))

    expect(page.locator(".instructions strong")).to_have_text("correctness")
    expect(page.locator(".keys")).to_contain_text("Both are bad")
    consent_and_start(page)

    # A marker on window survives only if the next comparisons arrive without a page load.
    page.evaluate("window.__sameDocument = 'yes'")
    progress = page.locator(".progress-text")
    keys = ["1", "2", "3", "4"]
    for number in range(1, 5):
        expect(progress).to_have_text(f"Comparison {number} of 4")
        assert page.evaluate("window.__sameDocument") == "yes"
        shown = page.locator("input[name=assignment]").input_value()
        page.keyboard.press("Enter")  # nothing chosen yet: Enter does nothing
        page.keyboard.press(keys[number - 1])
        expect(page.locator(f"input[name=choice][value={['left', 'right', 'tie', 'both_bad'][number - 1]}]")).to_be_checked()
        page.keyboard.press("Enter")
        if number < 4:
            expect(page.locator("input[name=assignment]")).not_to_have_value(shown)
            # The new comparison has the focus, so the keys keep working without a click.
            assert page.evaluate("document.activeElement && document.activeElement.id") == "rating"

    expect(page).to_have_url(re.compile(r"/r/t/[^/]+/done$"))
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    link = page.get_by_role("link", name="Return to Prolific and finish")
    expect(link).to_have_attribute("href", f"https://app.prolific.com/submissions/complete?cc={study.completion_code}")

    rater = Rater.objects.get(external_id="keyboard-rater")
    judgments = list(Judgment.objects.filter(rater=rater).order_by("created_at"))
    assert [j.choice for j in judgments] == ["left", "right", "tie", "both_bad"]
    assert all(j.active_seconds is not None and j.active_seconds >= 0 for j in judgments)
    assert problems == []


def test_the_reason_box_takes_digits_and_enter_without_choosing_or_submitting(live_server, page):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, min_seconds_per_judgment=0,
                            reason_mode=Study.ReasonMode.REQUIRED)
    page.goto(live_server.url + prolific_url(study, "typist"))
    consent_and_start(page)
    page.keyboard.press("2")
    reason = page.get_by_label("Why?")
    reason.click()
    reason.press_sequentially("1 is wrong")
    reason.press("Enter")
    expect(page.locator("input[name=choice][value=right]")).to_be_checked()
    expect(page.locator("input[name=choice][value=left]")).not_to_be_checked()
    expect(page.locator(".progress-text")).to_have_text("Comparison 1 of 2")
    assert not Judgment.objects.exists()
    page.locator("#rating-form button[type=submit]").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".progress-text")).to_have_text("Comparison 2 of 2")
    assert Judgment.objects.get().reason.startswith("1 is wrong")


def test_a_refused_submit_shows_the_message_in_place_and_keeps_the_choice(live_server, page):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, min_seconds_per_judgment=0,
                            scale=Study.Scale.AB_TIE_STRENGTH)
    problems = csp_watch(page)
    page.goto(live_server.url + prolific_url(study, "hasty"))
    consent_and_start(page)
    page.evaluate("window.__sameDocument = 'yes'")
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # no strength: the server refuses with 422, htmx swaps the answer in
    expect(page.locator("#rating-error")).to_have_text("Say whether the better response is slightly or much better.")
    expect(page.locator("input[name=choice][value=left]")).to_be_checked()
    page.keyboard.press("m")
    page.keyboard.press("Enter")
    expect(page.locator(".progress-text")).to_have_text("Comparison 2 of 2")
    assert page.evaluate("window.__sameDocument") == "yes"
    assert Judgment.objects.get().strength == "much"
    # 422 answers are logged by the browser as failed resources; anything else would be a real problem.
    assert [p for p in problems if "422" not in p] == []


def test_with_javascript_off_the_forms_still_work(live_server, browser):
    study = make_live_study(n_prompts=2, judgments_per_comparison=1, min_seconds_per_judgment=0)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(live_server.url + prolific_url(study, "no-js"))
        consent_and_start(page)
        for number, choice in ((1, "A is better"), (2, "Tie")):
            expect(page.locator(".progress-text")).to_have_text(f"Comparison {number} of 2")
            expect(page.locator(".choice .key").first).to_be_hidden()  # no keys without JavaScript
            page.get_by_text(choice, exact=True).click()
            with page.expect_navigation():
                page.get_by_role("button", name="Submit").click()
        expect(page.locator("#completion-code")).to_have_text(study.completion_code)
        assert sorted(Judgment.objects.values_list("choice", flat=True)) == ["left", "tie"]
    finally:
        context.close()
