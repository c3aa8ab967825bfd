"""Entry links: the builders in raters.links and `python manage.py links STUDY`."""
from __future__ import annotations

import re
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from evalsite.studies.models import Study
from raters.links import (
    entry_links,
    generic_link,
    mturk_external_question,
    mturk_link,
    new_rater_code,
    prolific_link,
)
from raters.models import Rater
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

PROLIFIC_QUERY = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"


@pytest.fixture
def study(db):
    # A slug that names the systems, as real ones do: it must never appear in a rater's link.
    return StudyFactory(slug="koala-vs-chatgpt", title="Koala vs ChatGPT")


def run_links(slug: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("links", slug, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_links_command_prints_generic_prolific_and_mturk_lines_exactly(study, settings):
    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    out, _ = run_links(study.slug)
    lines = out.splitlines()
    assert len(lines) == 3 and out.endswith("\n")
    base = f"https://eval.example.org/r/{study.rater_key}"
    assert re.fullmatch(rf"generic {re.escape(base)}/go\?code=[A-Za-z0-9_-]{{16}}", lines[0])
    assert lines[1] == f"prolific {base}/prolific?{PROLIFIC_QUERY}"
    assert lines[2] == f"mturk {base}/mturk"


def test_links_command_makes_a_new_generic_code_each_run(study):
    codes = {parse_qs(urlsplit(run_links(study.slug)[0].splitlines()[0].split(" ", 1)[1]).query)["code"][0]
             for _ in range(5)}
    assert len(codes) == 5


def test_links_use_the_opaque_rater_key_never_the_slug(study):
    out, _ = run_links(study.slug)
    assert study.rater_key in out
    assert "koala" not in out.lower() and "chatgpt" not in out.lower()


def test_links_command_respects_public_base_url_and_its_path(study, settings):
    settings.PUBLIC_BASE_URL = "https://lab.example.edu/eval"
    out, _ = run_links(study.slug)
    assert all(line.split(" ", 1)[1].startswith(f"https://lab.example.edu/eval/r/{study.rater_key}/")
               for line in out.splitlines())


def test_links_command_for_an_unknown_study_is_an_error_naming_it(db):
    with pytest.raises(CommandError, match="no-such-study"):
        run_links("no-such-study")


def test_links_command_warns_on_stderr_only_when_the_study_is_not_live(study):
    out, err = run_links(study.slug)
    assert "draft" in err and len(out.splitlines()) == 3
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    assert run_links(study.slug)[1] == ""


def test_prolific_placeholders_are_left_literal_for_prolific_to_fill(study):
    url = prolific_link(study, "https://h")
    assert url.endswith("/prolific?" + PROLIFIC_QUERY)
    assert "%7B" not in url and "%25" not in url  # not URL-encoded


def test_builders_ignore_a_trailing_slash_on_the_base(study):
    assert mturk_link(study, "https://h/") == f"https://h/r/{study.rater_key}/mturk"


def test_generic_link_keeps_a_given_code_and_encodes_it(study):
    assert generic_link(study, "https://h", code="a b&c") == f"https://h/r/{study.rater_key}/go?code=a+b%26c"


def test_new_rater_codes_are_long_and_distinct():
    codes = {new_rater_code() for _ in range(1000)}
    assert len(codes) == 1000 and all(len(code) >= 16 for code in codes)


def test_entry_links_are_in_the_command_order_with_kinds(study):
    assert [link.kind for link in entry_links(study, "https://h")] == ["generic", "prolific", "mturk"]


def test_mturk_external_question_escapes_the_url():
    xml = mturk_external_question("https://h/r/k/mturk?a=1&b=2")
    assert "<ExternalURL>https://h/r/k/mturk?a=1&amp;b=2</ExternalURL>" in xml
    assert xml.startswith("<ExternalQuestion xmlns=\"http://mechanicalturk.amazonaws.com/")
    assert "<FrameHeight>0</FrameHeight>" in xml


def test_printed_links_lead_raters_into_the_study(client, study, settings):
    """The contract with the rater pages: what the command prints, once the provider fills it in, enters."""
    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    printed = dict(line.split(" ", 1) for line in run_links(study.slug)[0].splitlines())
    local = {kind: address.removeprefix("https://eval.example.org") for kind, address in printed.items()}
    filled = {
        "generic": local["generic"],
        "prolific": local["prolific"].replace("{{%PROLIFIC_PID%}}", "pid-1").replace("{{%STUDY_ID%}}", "s-1")
        .replace("{{%SESSION_ID%}}", "sess-1"),
        "mturk": local["mturk"] + "?workerId=W1&assignmentId=A1&hitId=H1"
        "&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com",
    }
    for kind, address in filled.items():
        assert client.get(address).status_code in (200, 302, 303), kind
    code = parse_qs(urlsplit(printed["generic"]).query)["code"][0]
    assert set(Rater.objects.values_list("provider", "external_id")) == {
        ("generic", code), ("prolific", "pid-1"), ("mturk", "W1")}
