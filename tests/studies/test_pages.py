"""The researcher pages, driven through Django's test client as a researcher would use them."""
from __future__ import annotations

import html as htmllib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token

from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System
from tests.factories import PromptFactory, SystemFactory, UserFactory, make_study_with_responses

HTMX = {"HX-Request": "true"}


def jsonl(*rows: dict) -> bytes:
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows).encode() + b"\n"


def text(response) -> str:
    """The page as a reader sees it: entities decoded (so quotes read as quotes)."""
    return htmllib.unescape(response.content.decode())


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


PROMPTS = jsonl(
    {"id": "koala_0", "prompt": "What is the capital of Australia?", "category": "geography"},
    {"id": "koala_1", "prompt": "Explain photosynthesis in two sentences.", "category": "science"},
    {"id": "koala_2", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                   {"role": "user", "content": "Name a prime number."}]},
)


def responses_for(system: str, ids: list[str]) -> bytes:
    return jsonl(*({"prompt_id": i, "system": system, "text": f"{system} on {i} — ünïcode ✓"} for i in ids))


def page_urls(slug: str, system_pk: int = 1, comparison_pk: int = 1) -> list[tuple[str, str]]:
    """Every researcher page and action, with its method."""
    return [
        ("get", reverse("studies:list")),
        ("get", reverse("studies:create")),
        ("post", reverse("studies:create")),
        ("get", reverse("studies:api_token")),
        ("post", reverse("studies:api_token_regenerate")),
        ("get", reverse("studies:detail", args=[slug])),
        ("get", reverse("studies:edit", args=[slug])),
        ("post", reverse("studies:edit", args=[slug])),
        ("post", reverse("studies:set_status", args=[slug])),
        ("post", reverse("studies:system_add", args=[slug])),
        ("get", reverse("studies:system_edit", args=[slug, system_pk])),
        ("post", reverse("studies:system_edit", args=[slug, system_pk])),
        ("post", reverse("studies:system_delete", args=[slug, system_pk])),
        ("post", reverse("studies:import_prompts", args=[slug])),
        ("post", reverse("studies:import_responses", args=[slug])),
        ("get", reverse("studies:comparisons", args=[slug])),
        ("post", reverse("studies:comparisons_build", args=[slug])),
        ("post", reverse("studies:comparison_gold", args=[slug, comparison_pk])),
        ("get", reverse("studies:prompts", args=[slug])),
    ]


# --- access ---------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_login_from_every_page(client):
    study = make_study_with_responses()
    system = study.systems.first()
    for method, url in page_urls(study.slug, system_pk=system.pk):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith(reverse("login") + "?next="), (method, url)
    assert Study.objects.count() == 1 and System.objects.count() == 2


@pytest.mark.django_db
def test_non_researcher_gets_403_on_every_page_and_changes_nothing(client, outsider):
    study = make_study_with_responses()
    system = study.systems.first()
    client.force_login(outsider)
    for method, url in page_urls(study.slug, system_pk=system.pk):
        response = getattr(client, method)(url)
        assert response.status_code == 403, (method, url)
        assert b"researchers" in response.content
    assert System.objects.count() == 2 and not Token.objects.exists()
    assert Study.objects.get().status == Study.Status.DRAFT


@pytest.mark.django_db
def test_non_researcher_gets_403_even_for_a_study_that_does_not_exist(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("studies:detail", args=["no-such-study"])).status_code == 403


@pytest.mark.django_db
def test_staff_without_the_group_may_use_the_pages_and_sees_the_admin_link(client):
    client.force_login(UserFactory(username="boss", is_staff=True))
    response = client.get(reverse("studies:list"))
    assert response.status_code == 200
    assert reverse("admin:index").encode() in response.content


def test_researcher_sees_no_admin_link_and_logs_out_with_a_post_form(researcher_client):
    html = researcher_client.get(reverse("studies:list")).content.decode()
    assert reverse("admin:index") not in html
    assert f'<form method="post" action="{reverse("logout")}"' in html
    assert reverse("api-docs") in html


def test_unknown_slug_is_404(researcher_client):
    for method, url in page_urls("no-such-study", system_pk=999, comparison_pk=999)[5:]:
        assert getattr(researcher_client, method)(url).status_code == 404, (method, url)


def test_post_only_actions_refuse_get(researcher_client, study):
    assert researcher_client.get(reverse("studies:set_status", args=[study.slug])).status_code == 405
    assert researcher_client.get(reverse("studies:comparisons_build", args=[study.slug])).status_code == 405


def test_login_page_renders_a_form(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


# --- studies --------------------------------------------------------------------------------------------

STUDY_FORM = {
    "slug": "koala-vs-chatgpt",
    "title": "Koala vs ChatGPT",
    "public_title": "Which answer is better?",
    "instructions": "Which response is **better**? Judge correctness first.",
    "scale": "ab_tie",
    "pairing": "vs_reference",
    "reason_mode": "optional",
    "judgments_per_comparison": 3,
    "per_rater_cap": 20,
    "lease_ttl_seconds": 600,
    "gold_rate": 0.1,
    "gold_accuracy_threshold": 0.7,
    "gold_min_answered": 3,
    "min_seconds_per_judgment": 5,
}


def test_researcher_creates_a_study_and_it_shows_in_the_list(researcher_client, researcher):
    response = researcher_client.post(reverse("studies:create"), STUDY_FORM)
    study = Study.objects.get(slug="koala-vs-chatgpt")
    assert response.status_code == 302 and response["Location"] == study.get_absolute_url()
    assert study.created_by == researcher and study.gold_rate == 0.1 and study.status == Study.Status.DRAFT
    listing = researcher_client.get(reverse("studies:list")).content.decode()
    assert "Koala vs ChatGPT" in listing and "koala-vs-chatgpt" in listing and "New study" in listing


def test_create_shows_field_errors_and_stores_nothing(researcher_client, study):
    bad = {**STUDY_FORM, "slug": study.slug, "gold_rate": 1.5, "judgments_per_comparison": 0}
    response = researcher_client.post(reverse("studies:create"), bad)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"slug", "gold_rate", "judgments_per_comparison"} <= errors.keys()
    assert Study.objects.count() == 1


def test_create_refuses_a_slug_that_would_shadow_a_page(researcher_client):
    response = researcher_client.post(reverse("studies:create"), {**STUDY_FORM, "slug": "new"})
    assert "reserved" in str(response.context["form"].errors["slug"])
    assert not Study.objects.exists()


def test_researcher_edits_settings_but_not_the_slug(researcher_client, study):
    data = {**STUDY_FORM, "slug": "changed", "title": "Renamed", "judgments_per_comparison": 5}
    response = researcher_client.post(reverse("studies:edit", args=[study.slug]), data)
    assert response.status_code == 302
    study.refresh_from_db()
    assert (study.slug, study.title, study.judgments_per_comparison) == ("koala-vs-chatgpt", "Renamed", 5)


def test_edit_refuses_a_new_scale_once_judgments_exist_and_saves_nothing(researcher_client):
    study = make_study_with_responses(slug="judged")
    from evalsite.studies import services

    services.comparisons_build(study=study)
    Comparison.objects.filter(study=study).update(judgments_done=1)
    data = {**STUDY_FORM, "title": "Should not be saved", "scale": "ab_tie_bothbad"}
    response = researcher_client.post(reverse("studies:edit", args=[study.slug]), data)
    assert response.status_code == 200
    assert "judgments were collected" in response.content.decode()
    study.refresh_from_db()
    assert study.scale == "ab_tie" and study.title != "Should not be saved"


def test_researcher_input_is_escaped_on_every_page(researcher_client):
    study = make_study_with_responses(slug="xss", title="<script>alert(1)</script>",
                                      instructions="<img src=x onerror=alert(1)>")
    Prompt.objects.filter(study=study).update(text="<b onmouseover=alert(1)>hi</b>")
    for url in (reverse("studies:list"), reverse("studies:detail", args=[study.slug]),
                reverse("studies:prompts", args=[study.slug])):
        html = researcher_client.get(url).content.decode()
        assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b onmouseover" not in html


# --- status ---------------------------------------------------------------------------------------------

def test_launch_is_refused_without_comparisons_and_works_once_they_exist(researcher_client):
    study = make_study_with_responses(slug="launch-me", n_prompts=4)
    url = reverse("studies:set_status", args=[study.slug])

    response = researcher_client.post(url, {"status": "live"}, follow=True)
    assert "Cannot launch: the study has no comparisons yet" in response.content.decode()
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT

    researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]))
    response = researcher_client.post(url, {"status": "live"}, follow=True)
    study.refresh_from_db()
    assert study.status == Study.Status.LIVE
    html = response.content.decode()
    assert "now live" in html and ">Pause</button>" in html and ">Launch</button>" not in html


def test_pause_close_and_reopen(researcher_client):
    study = make_study_with_responses(slug="lifecycle")
    researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]))
    url = reverse("studies:set_status", args=[study.slug])
    for status in ("live", "paused", "closed", "live"):
        researcher_client.post(url, {"status": status})
        study.refresh_from_db()
        assert study.status == status


def test_an_unknown_status_changes_nothing(researcher_client, study):
    response = researcher_client.post(reverse("studies:set_status", args=[study.slug]), {"status": "deleted"},
                                      follow=True)
    assert "Unknown status" in response.content.decode()
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


# --- systems --------------------------------------------------------------------------------------------

def test_researcher_adds_a_reference_and_a_candidate_with_metadata(researcher_client, study):
    url = reverse("studies:system_add", args=[study.slug])
    researcher_client.post(url, {"name": "chatgpt", "role": "reference", "metadata": ""})
    researcher_client.post(url, {"name": "koala-13b", "role": "candidate",
                                 "metadata": '{"base_model": "llama-13b", "params_b": 13}'})
    systems = {s.name: s for s in study.systems.all()}
    assert systems["chatgpt"].role == "reference" and systems["chatgpt"].metadata == {}
    assert systems["koala-13b"].metadata == {"base_model": "llama-13b", "params_b": 13}
    html = researcher_client.get(study.get_absolute_url()).content.decode()
    assert "koala-13b" in html and "&quot;params_b&quot;: 13" in html


@pytest.mark.parametrize("metadata, message", [
    ("[1, 2]", "Must be a JSON object"),
    ('{"params_b": 13', "Not valid JSON"),
])
def test_system_metadata_must_be_a_json_object(researcher_client, study, metadata, message):
    response = researcher_client.post(reverse("studies:system_add", args=[study.slug]),
                                      {"name": "koala", "role": "candidate", "metadata": metadata})
    assert response.status_code == 200
    assert message in str(response.context["system_form"].errors["metadata"])
    assert not study.systems.exists()


def test_a_second_reference_is_refused_with_the_reason(researcher_client, study):
    SystemFactory(study=study, name="chatgpt", role=System.Role.REFERENCE)
    response = researcher_client.post(reverse("studies:system_add", args=[study.slug]),
                                      {"name": "gpt-4", "role": "reference", "metadata": ""})
    assert "already has a reference system ('chatgpt')" in text(response)
    assert study.systems.count() == 1


def test_researcher_edits_and_deletes_a_system(researcher_client, study):
    system = SystemFactory(study=study, name="koala", metadata={"params_b": 7})
    edit_url = reverse("studies:system_edit", args=[study.slug, system.pk])
    assert "&quot;params_b&quot;: 7" in researcher_client.get(edit_url).content.decode()
    researcher_client.post(edit_url, {"name": "koala-13b", "role": "candidate", "metadata": '{"params_b": 13}'})
    system.refresh_from_db()
    assert (system.name, system.metadata) == ("koala-13b", {"params_b": 13})
    researcher_client.post(reverse("studies:system_delete", args=[study.slug, system.pk]))
    assert not System.objects.filter(pk=system.pk).exists()


def test_a_system_of_another_study_is_404(researcher_client, study):
    other = SystemFactory(name="elsewhere")
    assert researcher_client.get(reverse("studies:system_edit", args=[study.slug, other.pk])).status_code == 404
    researcher_client.post(reverse("studies:system_delete", args=[study.slug, other.pk]))
    assert System.objects.filter(pk=other.pk).exists()


def test_deleting_a_judged_system_is_refused_with_a_message(researcher_client):
    study = make_study_with_responses(slug="judged-system")
    researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]))
    Comparison.objects.filter(study=study).update(judgments_done=2)
    candidate = study.systems.get(role=System.Role.CANDIDATE)
    response = researcher_client.post(reverse("studies:system_delete", args=[study.slug, candidate.pk]),
                                      follow=True)
    assert "Cannot remove" in response.content.decode()
    assert System.objects.filter(pk=candidate.pk).exists()


# --- uploads and coverage -------------------------------------------------------------------------------

def test_upload_prompts_and_responses_through_the_page_and_see_coverage(researcher_client, study):
    SystemFactory(study=study, name="chatgpt", role=System.Role.REFERENCE)
    SystemFactory(study=study, name="koala-13b")
    response = researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                                      {"file": upload("prompts.jsonl", PROMPTS)}, follow=True)
    assert "Prompts imported: 3 rows from prompts.jsonl: 3 added" in response.content.decode()
    researcher_client.post(reverse("studies:import_responses", args=[study.slug]),
                           {"file": upload("chatgpt.jsonl", responses_for("chatgpt", ["koala_0", "koala_1", "koala_2"]))})
    researcher_client.post(reverse("studies:import_responses", args=[study.slug]),
                           {"file": upload("koala.jsonl", responses_for("koala-13b", ["koala_1"]))})

    assert Prompt.objects.filter(study=study).count() == 3
    assert Response.objects.filter(prompt__study=study).count() == 4
    assert Response.objects.get(system__name="koala-13b").text == "koala-13b on koala_1 — ünïcode ✓"
    page = researcher_client.get(study.get_absolute_url())
    coverage = {row.system.name: row for row in page.context["coverage"]}
    assert (coverage["chatgpt"].responses, coverage["chatgpt"].missing) == (3, 0)
    assert (coverage["koala-13b"].responses, coverage["koala-13b"].missing_ids) == (1, ["koala_0", "koala_2"])
    html = page.content.decode()
    assert "3 / 3" in html and "1 / 3" in html and "33%" in html and "<code>koala_0</code>, <code>koala_2</code>" in html
    assert "chatgpt.jsonl" in html and "koala.jsonl" in html  # the recent imports table


def test_a_bad_upload_lists_every_line_and_field_and_stores_nothing(researcher_client, study):
    PromptFactory(study=study, external_id="already-here")
    before = (Prompt.objects.count(), ImportBatch.objects.count())
    bad = b'{"id": "already-here", "prompt": "again"}\n{"id": "", "prompt": "x"}\nnot json\n{"id": "p3"}\n' \
          b'{"id": "ok_5", "prompt": "fine"}\n'
    response = researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                                      {"file": upload("bad.jsonl", bad)})
    assert response.status_code == 200
    html = text(response)
    assert "bad.jsonl was not imported" in html and "nothing from it was stored" in html
    assert "line 2, field 'id': is empty" in html
    assert "line 3: invalid JSON" in html
    assert "line 4, field 'prompt': is missing" in html
    assert "line 1, field 'id': id 'already-here' is already in the study" in html
    # The database check runs after parsing; the list still reads in file order.
    assert html.index("line 1, field") < html.index("line 2, field") < html.index("line 3:") < html.index("line 4,")
    assert 'name="file"' in html  # the form is still there to try again
    assert (Prompt.objects.count(), ImportBatch.objects.count()) == before


def test_a_response_for_an_unknown_system_or_prompt_is_refused(researcher_client, study):
    PromptFactory(study=study, external_id="koala_0")
    SystemFactory(study=study, name="chatgpt", role=System.Role.REFERENCE)
    data = jsonl({"prompt_id": "koala_0", "system": "vicuna", "text": "hi"},
                 {"prompt_id": "koala_9", "system": "chatgpt", "text": "hi"})
    html = text(researcher_client.post(reverse("studies:import_responses", args=[study.slug]),
                                       {"file": upload("r.jsonl", data)}))
    assert "line 1, field 'system': system 'vicuna' is not in the study" in html
    assert "line 2, field 'prompt_id': unknown prompt id 'koala_9'" in html
    assert not Response.objects.exists()


def test_more_than_200_errors_are_cut_with_a_count_of_the_rest(researcher_client, study):
    bad = b"\n".join(b"nope" for _ in range(230)) + b"\n"
    html = researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                                  {"file": upload("bad.jsonl", bad)}).content.decode()
    assert "(230 problems)" in html
    assert "line 200: invalid JSON" in html and "line 201: invalid JSON" not in html
    assert "and 30 more" in html


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(researcher_client, study, settings):
    settings.IMPORT_MAX_BYTES = 50
    response = researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                                      {"file": upload("big.jsonl", PROMPTS)})
    assert "over the limit of 50 bytes" in response.content.decode()
    assert not Prompt.objects.exists() and not ImportBatch.objects.exists()


def test_importing_the_same_file_twice_is_refused_unless_replace_is_ticked(researcher_client, study):
    url = reverse("studies:import_prompts", args=[study.slug])
    researcher_client.post(url, {"file": upload("prompts.jsonl", PROMPTS)})
    html = researcher_client.post(url, {"file": upload("prompts.jsonl", PROMPTS)}).content.decode()
    assert "this exact file was already imported" in html
    assert ImportBatch.objects.count() == 1
    response = researcher_client.post(url, {"file": upload("prompts.jsonl", PROMPTS), "replace": "on"}, follow=True)
    assert "3 unchanged" in response.content.decode()
    assert ImportBatch.objects.count() == 2 and Prompt.objects.count() == 3


def test_htmx_upload_returns_the_form_partial_and_the_numbers_out_of_band(researcher_client, study):
    SystemFactory(study=study, name="chatgpt", role=System.Role.REFERENCE)
    response = researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                                      {"file": upload("prompts.jsonl", PROMPTS)}, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "<header" not in html
    assert 'id="import-prompts"' in html and "3 rows from prompts.jsonl: 3 added" in html
    assert 'id="coverage" class="card" aria-labelledby="coverage-heading" hx-swap-oob="true"' in html
    assert 'id="overview"' in html and 'id="imports"' in html
    assert "0 / 3" in html  # chatgpt's coverage, now that prompts exist


def test_htmx_bad_upload_returns_only_the_form_with_errors(researcher_client, study):
    response = researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                                      {"file": upload("bad.jsonl", b"{nope\n")}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "line 1: invalid JSON" in html and "hx-swap-oob" not in html
    assert not ImportBatch.objects.exists()


def test_htmx_system_add_returns_the_systems_partial(researcher_client, study):
    response = researcher_client.post(reverse("studies:system_add", args=[study.slug]),
                                      {"name": "chatgpt", "role": "reference", "metadata": ""}, headers=HTMX)
    html = response.content.decode()
    assert "<html" not in html and 'id="systems"' in html and "System chatgpt added as reference" in html
    assert 'id="coverage"' in html and "hx-swap-oob" in html


# --- comparisons ----------------------------------------------------------------------------------------

def test_build_comparisons_creates_them_and_says_how_many(researcher_client):
    study = make_study_with_responses(slug="build-me", n_prompts=5, candidates=2)
    response = researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]), follow=True)
    assert Comparison.objects.filter(study=study).count() == 10
    assert "10 comparisons added, 10 in all" in response.content.decode()


def test_build_without_a_reference_shows_the_rule(researcher_client, study):
    SystemFactory(study=study, name="koala")
    response = researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]), follow=True)
    assert "Nothing to compare yet" in response.content.decode()
    assert not Comparison.objects.exists()


def test_comparisons_page_lists_pairs_and_paginates(researcher_client):
    study = make_study_with_responses(slug="many", n_prompts=60, candidates=1, judgments_per_comparison=3)
    researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]))
    Comparison.objects.filter(study=study, prompt__external_id="q0").update(judgments_done=2)
    url = reverse("studies:comparisons", args=[study.slug])
    first = researcher_client.get(url)
    assert first.context["page"].paginator.count == 60 and len(first.context["page"].object_list) == 50
    html = first.content.decode()
    assert "<code>q0</code>" in html and "2 / 3" in html and "candidate-1" in html and "?page=2" in html
    second = researcher_client.get(url, {"page": 2}, headers=HTMX)
    assert "<html" not in second.content.decode() and len(second.context["page"].object_list) == 10
    assert "HX-Request" in second["Vary"]


def test_mark_a_comparison_gold_and_unmark_it(researcher_client):
    study = make_study_with_responses(slug="gold")
    researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]))
    comparison = Comparison.objects.filter(study=study).first()
    url = reverse("studies:comparison_gold", args=[study.slug, comparison.pk])

    researcher_client.post(url, {"action": "mark", "expected": "b", "note": "A invents a date", "page": "1"})
    comparison.refresh_from_db()
    assert (comparison.is_gold, comparison.gold_expected, comparison.gold_note) == (True, "b", "A invents a date")
    gold_only = researcher_client.get(reverse("studies:comparisons", args=[study.slug]), {"gold": "1"})
    assert gold_only.context["page"].paginator.count == 1

    row = researcher_client.post(url, {"action": "unmark"}, headers=HTMX).content.decode()
    assert row.lstrip().startswith(f'<tr id="comparison-{comparison.pk}"') and "Mark gold" in row
    comparison.refresh_from_db()
    assert not comparison.is_gold and comparison.gold_expected == ""


def test_marking_gold_needs_an_expected_answer(researcher_client):
    study = make_study_with_responses(slug="gold-missing")
    researcher_client.post(reverse("studies:comparisons_build", args=[study.slug]))
    comparison = Comparison.objects.filter(study=study).first()
    response = researcher_client.post(reverse("studies:comparison_gold", args=[study.slug, comparison.pk]),
                                      {"action": "mark", "expected": ""}, follow=True)
    assert "Choose the expected answer" in response.content.decode()
    comparison.refresh_from_db()
    assert not comparison.is_gold


# --- prompts --------------------------------------------------------------------------------------------

def test_prompts_page_shows_turns_and_filters_by_category(researcher_client, study):
    researcher_client.post(reverse("studies:import_prompts", args=[study.slug]),
                           {"file": upload("prompts.jsonl", PROMPTS)})
    url = reverse("studies:prompts", args=[study.slug])
    html = researcher_client.get(url).content.decode()
    assert "koala_0" in html and "Name a prime number." in html and 'class="turn turn-assistant"' in html
    science = researcher_client.get(url, {"category": "science"})
    assert [p.external_id for p in science.context["page"].object_list] == ["koala_1"]
    uncategorised = researcher_client.get(url, {"category": "__none__"}, headers=HTMX)
    assert [p.external_id for p in uncategorised.context["page"].object_list] == ["koala_2"]
    assert "<html" not in uncategorised.content.decode()


# --- API token ------------------------------------------------------------------------------------------

def test_token_page_creates_then_regenerates_a_token(researcher_client, researcher):
    url = reverse("studies:api_token")
    assert "Create token" in researcher_client.get(url).content.decode()
    response = researcher_client.post(reverse("studies:api_token_regenerate"), follow=True)
    token = Token.objects.get(user=researcher)
    html = response.content.decode()
    assert token.key in html and f'curl -H "Authorization: Token {token.key}" http://testserver/api/v1/studies/' in html
    researcher_client.post(reverse("studies:api_token_regenerate"))
    assert Token.objects.get(user=researcher).key != token.key
