"""Blinding: nothing a rater receives names or identifies a system or the study behind the public title.

The study, its systems and their responses carry telltale names, slugs, metadata and distinctive primary
keys; a rater then walks every page (entry links of each provider, errors, preview, welcome, consent, the
rating loop with and without htmx, refused submits, every kind of end page, the static files the pages load)
and none of those strings may appear in a body, a header, a cookie or a redirect address.
"""
from __future__ import annotations

import re

import pytest

from evalsite.studies.models import Prompt, Response, Study, System
from evalsite.studies.services import comparisons_build
from raters.models import Rater
from raters.services import rater_block
from tests.raters.test_rater_pages import HTMX, assignment_id, mturk_url, prolific_url

pytestmark = pytest.mark.django_db

STUDY_PK, REFERENCE_PK, CANDIDATE_PK = 876_543, 987_651, 987_652

SECRETS = [
    "chatgpt-secret", "koala-13b-hidden", "koala-vs-chatgpt-slug", "Koala vs ChatGPT internal",
    # metadata keys and values, provenance of the responses, the researcher's prompt ids and categories
    "llama-13b-base", "openai-vendor-tag", "imitation_tokens_m", "base_model", "sharegpt-provenance",
    "gpt-3.5-turbo-0301-provenance", "extid-secret", "category-secret", "researcher-only gold note",
]
PUBLIC_TITLE = "Compare two answers"
ANSWERS = {  # (prompt, reference text, candidate text): neutral texts the rater must see
    0: ("What is the capital of France?", "Paris is the capital.", "The capital is Paris, on the Seine."),
    1: ("Name a prime number.", "Seven is prime.", "Thirteen is a prime number."),
    2: ("What colour is the sky?", "Usually blue, by day.", "Blue, because of Rayleigh scattering."),
}


@pytest.fixture
def telltale_study(db):
    study = Study.objects.create(
        pk=STUDY_PK, slug="koala-vs-chatgpt-slug", title="Koala vs ChatGPT internal", public_title=PUBLIC_TITLE,
        instructions="Read the request and both answers, then pick the **better** one.",
        judgments_per_comparison=1, min_seconds_per_judgment=0, scale=Study.Scale.AB_TIE_BOTHBAD,
        provider_settings={"note": "koala-13b-hidden vs chatgpt-secret"},
    )
    reference = System.objects.create(pk=REFERENCE_PK, study=study, name="chatgpt-secret", role="reference",
                                      metadata={"vendor": "openai-vendor-tag"})
    candidate = System.objects.create(pk=CANDIDATE_PK, study=study, name="koala-13b-hidden", role="candidate",
                                      metadata={"base_model": "llama-13b-base", "params_b": 13,
                                                "imitation_tokens_m": 150})
    for i, (question, ref_text, cand_text) in ANSWERS.items():
        prompt = Prompt.objects.create(study=study, external_id=f"extid-secret-{i}", text=question,
                                       category="category-secret", position=i)
        for system, text in ((reference, ref_text), (candidate, cand_text)):
            Response.objects.create(prompt=prompt, system=system, text=text, model_name="gpt-3.5-turbo-0301-provenance",
                                    meta={"source": "sharegpt-provenance"}, sampling_params={"temperature": 0.7})
    comparisons_build(study=study)
    first = study.comparisons.order_by("pk").first()
    first.gold_note = "researcher-only gold note"
    first.save(update_fields=["gold_note"])
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    study.refresh_from_db()
    return study


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


class Walk:
    """Records every response a rater receives, then checks them all for anything that unblinds."""

    def __init__(self, client):
        self.client = client
        self.seen: list[tuple[str, object, str]] = []

    def get(self, url, **extra):
        return self._keep(url, self.client.get(url, **extra))

    def post(self, url, data, **extra):
        return self._keep(url, self.client.post(url, data, **extra))

    def _keep(self, url, response):
        self.seen.append((url, response, _body(response)))
        return response

    def assert_blind(self):
        pks = [str(STUDY_PK), str(REFERENCE_PK), str(CANDIDATE_PK)]
        for url, response, body in self.seen:
            headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
            cookies = "\n".join(morsel.OutputString() for morsel in response.cookies.values())
            for where, text in (("url", url), ("body", body), ("headers", headers), ("cookies", cookies)):
                lowered = text.lower()
                for secret in SECRETS:
                    assert secret.lower() not in lowered, f"{secret!r} in the {where} of {url}"
                for pk in pks:
                    assert not re.search(rf"(?<!\d){pk}(?!\d)", text), f"id {pk} in the {where} of {url}"
            assert not response.cookies, f"{url} set a cookie"
        assert not self.client.cookies


def test_no_rater_facing_page_names_a_system_or_the_study(client, telltale_study):
    study = telltale_study
    walk = Walk(client)

    # entry links, their errors and the provider pages that record nothing
    walk.get(f"/r/{study.rater_key}/go")
    walk.get(f"/r/{study.rater_key}/go?code=")
    walk.get(f"/r/{study.rater_key}/prolific?PROLIFIC_PID=only-this")
    walk.get(mturk_url(study, submit_to="https://evil.example"))
    walk.get(f"/r/{study.rater_key}/mturk?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H")
    walk.get("/r/not-a-key/prolific")
    walk.get("/r/t/not-a-token/rate")

    # a Prolific rater through the whole study, half of it with htmx
    entry = walk.get(prolific_url(study, "blind-1"))
    token = entry["Location"].split("/")[3]
    walk.get(entry["Location"])
    walk.post(f"/r/t/{token}/consent", {})
    walk.post(f"/r/t/{token}/consent", {"consent": "yes"})
    page = walk.get(f"/r/t/{token}/rate")
    shown_texts = []
    for round_number in range(len(ANSWERS)):
        body = _body(page)
        shown_texts += [text for _, ref, cand in ANSWERS.values() for text in (ref, cand) if text in body]
        walk.get(f"/r/t/{token}/rate")  # a reload
        walk.get(f"/r/t/{token}/done")  # too early: back to rating
        walk.post(f"/r/t/{token}/rate", {"assignment": assignment_id(page), "choice": "nope"})
        walk.post(f"/r/t/{token}/rate", {"assignment": assignment_id(page), "choice": "nope"}, **HTMX)
        htmx = round_number % 2 == 1
        answer = walk.post(f"/r/t/{token}/rate", {"assignment": assignment_id(page), "choice": "left"},
                           **(HTMX if htmx else {}))
        page = answer if htmx and answer.status_code == 200 and "HX-Redirect" not in answer else walk.get(
            f"/r/t/{token}/rate")
    walk.get(f"/r/t/{token}/done")
    walk.get(f"/r/t/{token}/")

    # every response text was shown, each once, and the walk saw every comparison
    assert sorted(shown_texts) == sorted(text for _, ref, cand in ANSWERS.values() for text in (ref, cand))

    # other end pages: an MTurk rater who found the pool empty, a screened-out one, a generic one
    mturk = walk.get(mturk_url(study, worker="W-blind"))["Location"].split("/")[3]
    walk.post(f"/r/t/{mturk}/consent", {"consent": "yes"})
    walk.get(f"/r/t/{mturk}/rate")
    walk.get(f"/r/t/{mturk}/done")
    generic = walk.get(f"/r/{study.rater_key}/go?code=blind-code")["Location"].split("/")[3]
    rater_block(rater=Rater.objects.get(token=generic))
    walk.get(f"/r/t/{generic}/done")

    # the static files the pages load
    rate_page = next(body for url, _, body in walk.seen if url == f"/r/t/{token}/rate")
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', rate_page):
        assert walk.get(src).status_code == 200

    # the study closing
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    walk.get(prolific_url(study, "too-late"))
    walk.get(f"/r/t/{token}/done")

    statuses = {response.status_code for _, response, _ in walk.seen}
    assert statuses >= {200, 303, 400, 404, 422}
    assert len(walk.seen) > 30
    walk.assert_blind()


def test_the_walk_would_notice_a_leak(client, telltale_study):
    # The check above is only worth something if it fails on a leak: a public title naming a system must trip it.
    Study.objects.filter(pk=telltale_study.pk).update(public_title="chatgpt-secret or not?")
    walk = Walk(client)
    walk.get(f"/r/{telltale_study.rater_key}/go")
    with pytest.raises(AssertionError, match="chatgpt-secret"):
        walk.assert_blind()
