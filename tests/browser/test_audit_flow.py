"""An expert in a real browser: logs in, opens the audit queue, selects a wrong passage with the mouse, records
a major finding with the keyboard, gives the verdict, and the next response appears without a page load.

(The expert audits' tests live in tests/audits; this one is here because the headless Chromium fixtures in
this folder's conftest are session-wide, and a second copy of them elsewhere would start Playwright twice.)
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evalsite.studies.models import Response
from raters.audits.models import Audit, AuditFinding
from tests.audits.conftest import make_audit_study, make_expert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# An emoji (two UTF-16 units, one code point) and CR LF breaks before the wrong year: the offsets must still
# be code points into the text as stored.
TEXT = "A short history 🗼 of the tower.\r\n\r\nThe Eiffel Tower was completed in 1899, in Paris.\r\nIt is tall."


def select_with_the_mouse(page, word: str) -> None:
    """Drag across `word` in the response text, as a person would."""
    box = page.evaluate(
        """(word) => {
            const root = document.getElementById('response-text');
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const at = node.data.indexOf(word);
                if (at === -1) continue;
                node.parentNode.scrollIntoView({block: 'center'});
                const range = document.createRange();
                range.setStart(node, at);
                range.setEnd(node, at + word.length);
                const r = range.getBoundingClientRect();
                return {left: r.left, right: r.right, y: r.top + r.height / 2};
            }
            return null;
        }""", word)
    assert box, f"{word!r} is not in the response text"
    page.mouse.move(box["left"] + 1, box["y"])
    page.mouse.down()
    page.mouse.move(box["right"] - 1, box["y"], steps=5)
    page.mouse.up()


def test_an_expert_flags_a_major_error_and_gets_the_next_response(live_server, page):
    study, plan = make_audit_study(n_prompts=2, candidates=1, m=1, public_title="Check the answers")
    Response.objects.filter(prompt__study=study).update(text=TEXT)
    make_expert("marie")  # password: the factory's default
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(f"{live_server.url}/audit/{plan.key}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill("marie")
    page.get_by_label("Password").fill("pw-for-tests-1")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/audit/{plan.key}/")
    expect(page.locator(".progress-text")).to_contain_text("Response 1")
    page.evaluate("window.__sameDocument = 'yes'")
    first = page.locator("#audit").get_attribute("data-audit")

    select_with_the_mouse(page, "1899")
    expect(page.locator("#quote")).to_have_value("1899")
    # Offsets from the selection itself (code points into the stored text), not a search for the quote.
    expect(page.locator("input[name=start]")).to_have_value(str(TEXT.index("1899")))
    expect(page.locator("input[name=end]")).to_have_value(str(TEXT.index("1899") + 4))
    page.keyboard.press("m")  # major, and on to "What is wrong"
    expect(page.locator("input[name=severity][value=major]")).to_be_checked()
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("It was completed in 1889, for the World's Fair.")
    page.keyboard.press("Tab")
    page.keyboard.type("1889")
    page.locator("#source_url").fill("https://www.toureiffel.paris/en/the-monument/history")
    page.locator("#source_url").press("Control+Enter")

    expect(page.locator(".finding-list .finding")).to_have_count(1)
    expect(page.locator("#response-text .flag-major")).to_have_text("1899")
    finding = AuditFinding.objects.get()
    assert (finding.start, finding.end, finding.quote, finding.severity) == (TEXT.index("1899"), TEXT.index("1899") + 4,
                                                                             "1899", "major")
    # The verdicts that no longer fit are disabled; the keyboard picks the one that does and submits it.
    expect(page.locator("input[name=verdict][value=no_errors]")).to_be_disabled()
    page.keyboard.press("3")
    expect(page.locator("input[name=verdict][value=major]")).to_be_checked()
    page.keyboard.press("Enter")

    expect(page.locator("#audit")).not_to_have_attribute("data-audit", first)
    expect(page.locator(".progress-text")).to_contain_text("Response 2")
    expect(page.locator(".finding-list .finding")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") == "yes"
    audit = Audit.objects.get(pk=first)
    assert audit.status == "submitted" and audit.verdict == "major" and audit.findings.count() == 1
    assert Audit.objects.filter(status="leased").count() == 1
    assert problems == []
