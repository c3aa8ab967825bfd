"""Blinding: nothing an expert receives names or identifies a system, the study behind its public title, or
which system wrote a response.

The study, its systems, prompts and responses carry telltale names, slugs, metadata, provenance and
distinctive primary keys; an expert walks every audit page (home, the queue, findings added, refused and
deleted, verdicts refused and accepted, with and without htmx, the end of the queue, bad addresses, the static
files) and none of those strings may appear in a body, a header, a cookie or an address.
"""
from __future__ import annotations

import re

import pytest

from evalsite.studies.models import Prompt, Response, Study, System
from evalsite.studies.services import comparisons_build
from raters.audits.services import audit_plan_save
from tests.audits.conftest import make_expert
from tests.raters.test_blinding import Walk as RaterWalk
from tests.raters.test_blinding import _body

pytestmark = pytest.mark.django_db

STUDY_PK, REFERENCE_PK, CANDIDATE_PK, PROMPT_PK, RESPONSE_PK = 876_543, 987_651, 987_652, 765_430, 654_320
SECRETS = [
    "chatgpt-secret", "koala-13b-hidden", "koala-vs-chatgpt-slug", "Koala vs ChatGPT internal",
    "llama-13b-base", "openai-vendor-tag", "imitation_tokens_m", "base_model", "sharegpt-provenance",
    "gpt-3.5-turbo-0301-provenance", "extid-secret", "category-secret", "reference", "candidate",
]
ANSWERS = {
    0: ("What is the capital of France?", "Paris is the capital.", "The capital is Paris, on the Seine."),
    1: ("Name a prime number.", "Seven is prime.", "Thirteen is a prime number."),
}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def telltale_plan(db):
    study = Study.objects.create(
        pk=STUDY_PK, slug="koala-vs-chatgpt-slug", title="Koala vs ChatGPT internal",
        public_title="Check the answers", provider_settings={"note": "koala-13b-hidden vs chatgpt-secret"},
    )
    reference = System.objects.create(pk=REFERENCE_PK, study=study, name="chatgpt-secret", role="reference",
                                      metadata={"vendor": "openai-vendor-tag"})
    candidate = System.objects.create(pk=CANDIDATE_PK, study=study, name="koala-13b-hidden", role="candidate",
                                      metadata={"base_model": "llama-13b-base", "imitation_tokens_m": 150})
    for i, (question, ref_text, cand_text) in ANSWERS.items():
        prompt = Prompt.objects.create(pk=PROMPT_PK + i, study=study, external_id=f"extid-secret-{i}", text=question,
                                       category="category-secret", position=i)
        for j, (system, text) in enumerate(((reference, ref_text), (candidate, cand_text))):
            Response.objects.create(pk=RESPONSE_PK + 2 * i + j, prompt=prompt, system=system, text=text,
                                    model_name="gpt-3.5-turbo-0301-provenance", meta={"source": "sharegpt-provenance"})
    comparisons_build(study=study)
    return audit_plan_save(study=study, selection="all", audits_per_response=1,
                           instructions="Check every **fact**.").plan


class Walk(RaterWalk):
    """The raters' walk (it records every response), with the expert pages' own check."""

    def assert_blind(self):
        pks = [STUDY_PK, REFERENCE_PK, CANDIDATE_PK, PROMPT_PK, PROMPT_PK + 1,
               *(RESPONSE_PK + k for k in range(4))]
        for url, response, body in self.seen:
            headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
            cookies = "\n".join(morsel.OutputString() for morsel in response.cookies.values())
            for where, text in (("url", url), ("body", body), ("headers", headers), ("cookies", cookies)):
                lowered = text.lower()
                for secret in SECRETS:
                    assert secret.lower() not in lowered, f"{secret!r} in the {where} of {url}"
                for pk in pks:
                    assert not re.search(rf"(?<!\d){pk}(?!\d)", text), f"id {pk} in the {where} of {url}"


def _audit_id(response) -> int:
    return int(re.search(r'data-audit="(\d+)"', response.content.decode()).group(1))


def test_no_expert_facing_page_names_a_system_or_the_study(client, telltale_plan):
    plan = telltale_plan
    client.force_login(make_expert("blind-expert"))
    walk = Walk(client)
    base = f"/audit/{plan.key}/"

    walk.get("/audit/")
    walk.get("/audit/not-a-key/")
    page = walk.get(base)
    shown = []
    for round_number in range(4):
        body = _body(page)
        shown += [text for _, ref, cand in ANSWERS.values() for text in (ref, cand) if text in body]
        current = _audit_id(page)
        htmx = HTMX if round_number % 2 else {}
        walk.get(base, **htmx)  # a reload
        text = next(t for _, ref, cand in ANSWERS.values() for t in (ref, cand) if t in body)
        walk.post(f"{base}{current}/findings/", {"quote": "nowhere in it", "severity": "major", "note": "n",
                                                 "correction": "c"}, **htmx)
        walk.post(f"{base}{current}/findings/", {"quote": text[:5], "start": "0", "end": "5", "severity": "major",
                                                 "note": "Wrong.", "correction": "Right.",
                                                 "source_url": "https://example.org/source"}, **htmx)
        walk.post(f"{base}{current}/submit/", {"verdict": "no_errors"}, **htmx)  # refused: it has a finding
        if round_number == 0:
            page = walk.get(base)
            finding = re.search(r"/findings/(\d+)/delete/", _body(page)).group(1)
            walk.post(f"{base}{current}/findings/{finding}/delete/", {}, **htmx)
            answer = walk.post(f"{base}{current}/submit/", {"verdict": "no_errors"}, **htmx)
        else:
            answer = walk.post(f"{base}{current}/submit/", {"verdict": "major", "comment": "c"}, **htmx)
        page = answer if htmx and 'data-audit="' in _body(answer) else walk.get(base)
    walk.get(base)  # the end of the queue
    walk.get("/audit/")
    walk.post(f"{base}999999/submit/", {"verdict": "no_errors"})

    # every response was shown, each once
    assert sorted(shown) == sorted(text for _, ref, cand in ANSWERS.values() for text in (ref, cand))

    # the static files the page loads
    full = next(body for url, response, body in walk.seen if url == base and "<html" in body)
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', full):
        assert walk.get(src).status_code == 200

    statuses = {response.status_code for _, response, _ in walk.seen}
    assert statuses >= {200, 303, 404, 422}
    walk.assert_blind()


def test_the_walk_would_notice_a_leak(client, telltale_plan):
    Study.objects.filter(pk=telltale_plan.study_id).update(public_title="chatgpt-secret or not?")
    client.force_login(make_expert("blind-expert"))
    walk = Walk(client)
    walk.get(f"/audit/{telltale_plan.key}/")
    with pytest.raises(AssertionError, match="chatgpt-secret"):
        walk.assert_blind()
