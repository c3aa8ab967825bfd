"""Model output is untrusted: Markdown survives, anything that runs or loads is inert."""
from html.parser import HTMLParser

import pytest

from evalsite.studies.rendering import ALLOWED_TAGS, render_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<style>body{display:none}</style>",
    "<form action=\"https://evil.example\"><input name=q></form>",
    "<svg onload=alert(1)>",
    "![tracker](https://evil.example/pixel.png)",
    "<div style=\"background:url(https://evil.example/x)\">styled</div>",
]


def elements(html: str) -> list[tuple[str, dict]]:
    """Every element the browser would build from `html`, with its attributes."""
    found = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(html)
    return found


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_come_out_inert(payload):
    html = render_markdown(f"Before\n\n{payload}\n\nAfter")
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, html
        assert not any(name.startswith("on") or name in ("style", "src") for name in attrs), html
        assert not attrs.get("href", "").lower().startswith("javascript"), html
    assert "Before" in html and "After" in html


def test_markdown_structure_is_kept():
    html = render_markdown("## Title\n\n- one\n- **two**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode <b>\n```\n\n"
                           "[site](https://example.org)")
    for fragment in ("<h2>Title</h2>", "<li>one</li>", "<strong>two</strong>", "<table>", "<td>1</td>",
                     "<pre><code>code &lt;b&gt;", 'href="https://example.org"', 'rel="noopener noreferrer nofollow"'):
        assert fragment in html


def test_raw_html_is_shown_as_text():
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in render_markdown("<script>alert(1)</script>")
