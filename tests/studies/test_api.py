"""The REST API under /api/v1/: who may call it, the study set-up workflow, import errors, the schema."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System
from tests.factories import (
    ResearcherFactory,
    StudyFactory,
    SystemFactory,
    UserFactory,
    make_study_with_responses,
)

pytestmark = pytest.mark.django_db

API = "/api/v1"
LONG_PROMPT = ("Zürich naïve — 東京 🎉 \"quoted\" \\ backslash " * 600)[:20_000]
MULTI_LINE = "First line\nsecond line\r\nthird\u2028after a line separator\n\n\ttabbed 👩‍🔬  "


def jsonl(*objects) -> bytes:
    return ("\n".join(json.dumps(o, ensure_ascii=False) for o in objects) + "\n").encode()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(researcher) -> APIClient:
    return token_client(researcher)


def koala_prompts() -> bytes:
    return jsonl(
        {"id": "koala_0", "prompt": LONG_PROMPT},
        {"id": "koala_1", "prompt": MULTI_LINE},
        {"id": "koala_2", "prompt": "Explain the difference between a list and a tuple in Python."},
    )


def responses_for(system: str, ids=("koala_0", "koala_1", "koala_2")) -> bytes:
    return jsonl(*({"prompt_id": i, "system": system, "text": f"{system} → answer to {i} ✓",
                    "meta": {"model": system, "seed": 7, "finish_reason": "stop"}} for i in ids))


def study_with_systems(api: APIClient, slug: str = "koala-vs-chatgpt") -> str:
    assert api.post(f"{API}/studies/", {"slug": slug, "title": "Koala vs ChatGPT"}, format="json").status_code == 201
    assert api.post(f"{API}/studies/{slug}/systems/", {"name": "chatgpt", "role": "reference"},
                    format="json").status_code == 201
    assert api.post(f"{API}/studies/{slug}/systems/", {"name": "koala-13b", "role": "candidate"},
                    format="json").status_code == 201
    return slug


# --- who may call ---------------------------------------------------------------------------------------

PROTECTED = [
    ("get", "/studies/"),
    ("post", "/studies/"),
    ("get", "/studies/koala-vs-chatgpt/"),
    ("get", "/studies/koala-vs-chatgpt/systems/"),
    ("get", "/studies/koala-vs-chatgpt/prompts/"),
    ("post", "/studies/koala-vs-chatgpt/prompts/import/"),
    ("post", "/studies/koala-vs-chatgpt/responses/import/"),
    ("get", "/studies/koala-vs-chatgpt/coverage/"),
    ("post", "/studies/koala-vs-chatgpt/status/"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_anonymous_request_gets_401_with_token_challenge(study, method, path):
    response = getattr(APIClient(), method)(API + path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials were not provided" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_invalid_token_gets_401(study, method, path):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = getattr(client, method)(API + path)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_token_of_a_non_researcher_gets_403(study, outsider, method, path):
    response = getattr(token_client(outsider), method)(API + path)
    assert response.status_code == 403
    assert "Only researchers" in response.json()["detail"]
    assert Study.objects.count() == 1 and Prompt.objects.count() == 0


@pytest.mark.parametrize("path", [p for m, p in PROTECTED if m == "get"])
def test_researcher_token_is_allowed(study, api, path):
    assert api.get(API + path).status_code == 200


@pytest.mark.parametrize("path", [p for m, p in PROTECTED if m == "get"])
def test_staff_session_is_allowed(study, path):
    client = APIClient()
    client.force_login(UserFactory(username="admin", is_staff=True))
    assert client.get(API + path).status_code == 200


def test_deactivated_researcher_token_gets_401(study):
    researcher = ResearcherFactory()
    client = token_client(researcher)
    researcher.is_active = False
    researcher.save()
    assert client.get(f"{API}/studies/").status_code == 401


def test_non_researcher_learns_nothing_about_which_studies_exist(outsider):
    assert token_client(outsider).get(f"{API}/studies/no-such-study/").status_code == 403


# --- the schema -----------------------------------------------------------------------------------------

def test_schema_is_public_and_a_valid_openapi_3_document_with_the_import_paths():
    # Public on purpose: it describes the API's shape, holds no data, and the Swagger UI page loads it.
    response = APIClient().get(f"{API}/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    for kind in ("prompts", "responses"):
        operation = schema["paths"][f"/api/v1/studies/{{slug}}/{kind}/import/"]["post"]
        content = operation["requestBody"]["content"]
        upload_schema = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert schema["components"]["schemas"][upload_schema]["properties"]["file"]["format"] == "binary"
        assert {"application/jsonl", "text/csv"} <= set(content)
        assert set(operation["responses"]) >= {"201", "400"}
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_schema_with_invalid_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(f"{API}/schema/").status_code == 401


# --- studies --------------------------------------------------------------------------------------------

def test_create_study_records_the_creator_and_starts_as_draft(api, researcher):
    response = api.post(f"{API}/studies/", {"slug": "s1", "title": "First", "judgments_per_comparison": 5,
                                            "provider_settings": {"prolific_completion_url": "https://x"}},
                        format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["slug"], body["status"], body["judgments_per_comparison"], body["created_by"]) == (
        "s1", "draft", 5, researcher.username)
    assert body["n_prompts"] == body["n_comparisons"] == 0
    assert Study.objects.get(slug="s1").created_by == researcher


def test_create_study_with_a_taken_slug_or_bad_values_names_the_fields(api, study):
    response = api.post(f"{API}/studies/", {"slug": study.slug, "title": "", "gold_rate": 2},
                        format="json")
    assert response.status_code == 400
    body = response.json()
    assert {e["field"] for e in body["errors"]} == {"slug", "title", "gold_rate"}
    assert all(e["line"] is None and e["message"] for e in body["errors"])
    assert "slug:" in body["detail"]
    assert Study.objects.count() == 1


def test_study_list_has_counts(api):
    counted_study = make_study_with_responses(n_prompts=4, candidates=2, slug="counted")
    StudyFactory(slug="empty")
    api.post(f"{API}/studies/counted/comparisons/build/")
    Comparison.objects.filter(study=counted_study).update(judgments_done=2)
    body = api.get(f"{API}/studies/").json()
    assert body["count"] == 2
    counted = next(s for s in body["results"] if s["slug"] == "counted")
    assert (counted["n_systems"], counted["n_prompts"], counted["n_responses"], counted["n_comparisons"],
            counted["n_judgments"]) == (3, 4, 12, 8, 16)
    empty = next(s for s in body["results"] if s["slug"] == "empty")
    assert (empty["n_systems"], empty["n_prompts"], empty["n_judgments"]) == (0, 0, 0)


def test_unknown_study_is_404_json(api):
    for path in ("", "systems/", "prompts/", "responses/", "coverage/", "comparisons/"):
        response = api.get(f"{API}/studies/no-such-study/{path}")
        assert response.status_code == 404
        assert response.json() == {"detail": "No study with slug 'no-such-study'."}


def test_patch_changes_settings_through_the_service(api, study):
    response = api.patch(f"{API}/studies/{study.slug}/", {"title": "Renamed", "gold_rate": 0.1}, format="json")
    assert response.status_code == 200
    study.refresh_from_db()
    assert (study.title, study.gold_rate) == ("Renamed", 0.1)


def test_patch_refuses_status_and_slug_changes_instead_of_ignoring_them(api, study):
    response = api.patch(f"{API}/studies/{study.slug}/", {"status": "live", "slug": "other"}, format="json")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"status", "slug"}
    assert "/status/" in response.json()["detail"]
    study.refresh_from_db()
    assert (study.status, study.slug) == ("draft", "koala-vs-chatgpt")
    unchanged = api.patch(f"{API}/studies/{study.slug}/", {"status": "draft", "title": "Same"}, format="json")
    assert unchanged.status_code == 200


def test_patch_refuses_a_scale_change_once_judgments_exist(api):
    study = make_study_with_responses(slug="judged")
    api.post(f"{API}/studies/judged/comparisons/build/")
    Comparison.objects.filter(study=study).update(judgments_done=2)
    response = api.patch(f"{API}/studies/judged/", {"scale": "ab_tie_bothbad"}, format="json")
    assert response.status_code == 400
    assert "Cannot change scale" in response.json()["detail"]
    study.refresh_from_db()
    assert study.scale == "ab_tie"


def test_codes_must_differ(api, study):
    response = api.patch(f"{API}/studies/{study.slug}/", {"screened_out_code": study.completion_code},
                         format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "screened_out_code"


def test_status_conflicts_are_409_with_the_rule(api, study):
    launch = api.post(f"{API}/studies/{study.slug}/status/", {"status": "live"}, format="json")
    assert launch.status_code == 409
    assert "no comparisons yet" in launch.json()["detail"]
    pause = api.post(f"{API}/studies/{study.slug}/status/", {"status": "paused"}, format="json")
    assert pause.status_code == 409
    assert pause.json()["detail"] == "A draft study cannot become paused."
    study.refresh_from_db()
    assert study.status == "draft"


def test_status_must_be_one_of_live_paused_closed(api, study):
    response = api.post(f"{API}/studies/{study.slug}/status/", {"status": "draft"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"
    missing = api.post(f"{API}/studies/{study.slug}/status/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "status"


# --- systems --------------------------------------------------------------------------------------------

def test_duplicate_system_name_is_400_and_nothing_added(api, study):
    SystemFactory(study=study, name="koala-13b")
    response = api.post(f"{API}/studies/{study.slug}/systems/", {"name": "koala-13b"}, format="json")
    assert response.status_code == 400
    assert "koala-13b" in response.json()["detail"]
    assert study.systems.count() == 1


def test_second_reference_is_400(api, study):
    SystemFactory(study=study, name="chatgpt", role=System.Role.REFERENCE)
    response = api.post(f"{API}/studies/{study.slug}/systems/", {"name": "gpt-4", "role": "reference"},
                        format="json")
    assert response.status_code == 400
    assert "already has a reference system ('chatgpt')" in response.json()["detail"]


def test_system_metadata_must_be_a_json_object(api, study):
    response = api.post(f"{API}/studies/{study.slug}/systems/", {"name": "x", "metadata": [1, 2]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"line": None, "field": "metadata", "message": 'must be a JSON object, e.g. {"key": "value"}.'}]


def test_system_named_like_a_hub_model_can_be_read_updated_and_deleted(api, study):
    url = f"{API}/studies/{study.slug}/systems/"
    created = api.post(url, {"name": "meta-llama/Llama-2-7b", "metadata": {"params_b": 7}}, format="json")
    assert created.status_code == 201
    assert api.get(url + "meta-llama/Llama-2-7b/").json()["metadata"] == {"params_b": 7}
    patched = api.patch(url + "meta-llama/Llama-2-7b/", {"role": "reference", "metadata": {"params_b": 7.0,
                                                                                            "base": "llama"}},
                        format="json")
    assert patched.status_code == 200 and patched.json()["role"] == "reference"
    assert api.delete(url + "meta-llama/Llama-2-7b/").status_code == 204
    assert not study.systems.exists()
    missing = api.get(url + "meta-llama/Llama-2-7b/")
    assert missing.status_code == 404 and "no system named" in missing.json()["detail"]


def test_system_with_judged_responses_cannot_be_deleted(api):
    study = make_study_with_responses(slug="judged")
    api.post(f"{API}/studies/judged/comparisons/build/")
    Comparison.objects.filter(study=study).update(judgments_done=1)
    response = api.delete(f"{API}/studies/judged/systems/candidate-1/")
    assert response.status_code == 409
    assert "judgments" in response.json()["detail"]
    assert study.systems.filter(name="candidate-1").exists()


# --- the whole workflow ---------------------------------------------------------------------------------

def test_koala_study_from_creation_to_launch(api):
    slug = study_with_systems(api)
    systems = api.get(f"{API}/studies/{slug}/systems/").json()
    assert [(s["name"], s["role"]) for s in systems] == [("chatgpt", "reference"), ("koala-13b", "candidate")]

    imported = api.post(f"{API}/studies/{slug}/prompts/import/", {"file": upload("koala_test_set.jsonl",
                                                                                 koala_prompts())})
    assert imported.status_code == 201, imported.json()
    body = imported.json()
    assert (body["created"], body["updated"], body["unchanged"], body["rows"]) == (3, 0, 0, 3)
    batch = ImportBatch.objects.get(pk=body["batch"])
    assert (batch.filename, batch.source, batch.kind) == ("koala_test_set.jsonl", "api", "prompts")

    prompts = api.get(f"{API}/studies/{slug}/prompts/")
    assert prompts.status_code == 200
    results = json.loads(prompts.content.decode("utf-8"))["results"]
    assert [p["id"] for p in results] == ["koala_0", "koala_1", "koala_2"]
    assert results[0]["prompt"].encode("utf-8") == LONG_PROMPT.encode("utf-8")
    assert len(results[0]["prompt"]) == 20_000
    assert results[1]["prompt"].encode("utf-8") == MULTI_LINE.encode("utf-8")
    assert results[1]["messages"] is None and results[1]["import_batch"] == body["batch"]

    for system in ("chatgpt", "koala-13b"):
        response = api.post(f"{API}/studies/{slug}/responses/import/",
                            {"file": upload(f"{system}.jsonl", responses_for(system))})
        assert response.status_code == 201, response.json()
        assert response.json()["created"] == 3

    listed = api.get(f"{API}/studies/{slug}/responses/", {"system": "koala-13b"}).json()
    assert listed["count"] == 3
    first = listed["results"][0]
    assert (first["prompt_id"], first["system"], first["text"]) == ("koala_0", "koala-13b",
                                                                    "koala-13b → answer to koala_0 ✓")
    assert (first["source"], first["model_name"], first["seed"], first["finish_reason"]) == (
        "import", "koala-13b", 7, "stop")
    assert first["meta"] == {"model": "koala-13b", "seed": 7, "finish_reason": "stop"}

    coverage = api.get(f"{API}/studies/{slug}/coverage/").json()
    assert coverage["prompts"] == 3
    assert [(c["system"], c["responses"], c["missing"], c["complete"]) for c in coverage["systems"]] == [
        ("chatgpt", 3, 0, True), ("koala-13b", 3, 0, True)]

    built = api.post(f"{API}/studies/{slug}/comparisons/build/")
    assert built.status_code == 200
    assert {k: built.json()[k] for k in ("created", "removed", "total", "skipped_prompts")} == {
        "created": 3, "removed": 0, "total": 3, "skipped_prompts": 0}
    assert api.post(f"{API}/studies/{slug}/comparisons/build/").json()["created"] == 0

    comparisons = api.get(f"{API}/studies/{slug}/comparisons/").json()
    assert comparisons["count"] == 3
    assert {(c["prompt_id"], frozenset((c["system_a"], c["system_b"])), c["is_gold"], c["judgments_done"])
            for c in comparisons["results"]} == {
        (f"koala_{i}", frozenset({"chatgpt", "koala-13b"}), False, 0) for i in range(3)}

    launched = api.post(f"{API}/studies/{slug}/status/", {"status": "live"}, format="json")
    assert launched.status_code == 200
    assert (launched.json()["status"], launched.json()["n_comparisons"]) == ("live", 3)
    assert api.post(f"{API}/studies/{slug}/status/", {"status": "paused"}, format="json").json()["status"] == "paused"


def test_coverage_lists_missing_prompts(api):
    slug = study_with_systems(api)
    api.post(f"{API}/studies/{slug}/prompts/import/", {"file": upload("p.jsonl", koala_prompts())})
    api.post(f"{API}/studies/{slug}/responses/import/",
             {"file": upload("k.jsonl", responses_for("koala-13b", ids=("koala_1",)))})
    coverage = {c["system"]: c for c in api.get(f"{API}/studies/{slug}/coverage/").json()["systems"]}
    assert coverage["koala-13b"]["missing_ids"] == ["koala_0", "koala_2"]
    assert coverage["chatgpt"]["responses"] == 0 and coverage["chatgpt"]["missing"] == 3


def test_build_without_a_reference_is_409(api, study):
    SystemFactory(study=study, name="koala-13b")
    response = api.post(f"{API}/studies/{study.slug}/comparisons/build/")
    assert response.status_code == 409
    assert "add a reference system" in response.json()["detail"]


# --- import errors and variants -------------------------------------------------------------------------

def test_bad_prompts_file_is_400_with_every_line_and_nothing_stored(api, study):
    data = b'{"id": "ok", "prompt": "fine"}\n{"id": "p2", "prompt": ""}\nnot json\n{"prompt": "no id"}\n' \
           b'{"id": "ok", "prompt": "again"}\n'
    response = api.post(f"{API}/studies/{study.slug}/prompts/import/", {"file": upload("bad.jsonl", data)})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "bad.jsonl was not imported (4 problems); nothing from it was stored."
    assert body["errors"] == [
        {"line": 2, "field": "prompt", "message": "is empty"},
        {"line": 3, "field": None, "message": "invalid JSON: Expecting value at column 1"},
        {"line": 4, "field": "id", "message": "is missing"},
        {"line": 5, "field": "id", "message": "duplicate id 'ok' (first on line 1)"},
    ]
    assert not Prompt.objects.exists() and not ImportBatch.objects.exists()


def test_bad_responses_file_names_unknown_prompts_and_systems(api):
    slug = study_with_systems(api)
    api.post(f"{API}/studies/{slug}/prompts/import/", {"file": upload("p.jsonl", koala_prompts())})
    data = jsonl({"prompt_id": "koala_0", "system": "koala-13b", "text": "fine"},
                 {"prompt_id": "koala_99", "system": "koala-13b", "text": "unknown prompt"},
                 {"prompt_id": "koala_1", "system": "vicuna", "text": "unknown system"})
    response = api.post(f"{API}/studies/{slug}/responses/import/", {"file": upload("r.jsonl", data)})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "prompt_id"), (3, "system")]
    assert "vicuna" in errors[1]["message"]
    assert not Response.objects.exists()


def test_import_without_a_file_names_the_file_field(api, study):
    for response in (api.post(f"{API}/studies/{study.slug}/prompts/import/", {"replace": "true"}),
                     api.post(f"{API}/studies/{study.slug}/responses/import/")):
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "file"
        assert response.json()["detail"].startswith("file:")


def test_import_of_a_non_utf8_file_says_where(api, study):
    response = api.post(f"{API}/studies/{study.slug}/prompts/import/",
                        {"file": upload("latin1.jsonl", '{"id": "a", "prompt": "café"}\n'.encode("latin-1"))})
    assert response.status_code == 400
    assert response.json()["errors"][0]["line"] == 1
    assert "not valid UTF-8" in response.json()["errors"][0]["message"]


def test_same_file_twice_is_refused_unless_replace(api, study):
    url = f"{API}/studies/{study.slug}/prompts/import/"
    assert api.post(url, {"file": upload("p.jsonl", koala_prompts())}).status_code == 201
    again = api.post(url, {"file": upload("p.jsonl", koala_prompts())})
    assert again.status_code == 400
    assert "already imported" in again.json()["errors"][0]["message"]
    replaced = api.post(url, {"file": upload("p.jsonl", koala_prompts()), "replace": "true"})
    assert replaced.status_code == 201
    assert (replaced.json()["unchanged"], replaced.json()["replace"]) == (3, True)
    assert study.prompts.count() == 3


def test_replace_flag_as_query_parameter(api, study):
    url = f"{API}/studies/{study.slug}/prompts/import/"
    api.post(url, {"file": upload("p.jsonl", jsonl({"id": "a", "prompt": "old"}))})
    response = api.post(url + "?replace=true", {"file": upload("p2.jsonl", jsonl({"id": "a", "prompt": "new"}))})
    assert response.status_code == 201 and response.json()["updated"] == 1
    assert study.prompts.get().text == "new"


def test_invalid_replace_value_is_400(api, study):
    response = api.post(f"{API}/studies/{study.slug}/prompts/import/?replace=perhaps",
                        {"file": upload("p.jsonl", koala_prompts())})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "replace"
    assert not study.prompts.exists()


def test_raw_jsonl_body_with_filename(api, study):
    response = api.generic("POST", f"{API}/studies/{study.slug}/prompts/import/?filename=koala.jsonl",
                           koala_prompts(), content_type="application/jsonl")
    assert response.status_code == 201, response.json()
    assert response.json()["filename"] == "koala.jsonl"
    assert study.prompts.get(external_id="koala_0").text == LONG_PROMPT


def test_raw_csv_body_without_filename(api, study):
    data = 'id,prompt,category\np1,"two\nlines, and a comma",science\np2,plain ✓,\n'.encode()
    response = api.generic("POST", f"{API}/studies/{study.slug}/prompts/import/", data, content_type="text/csv")
    assert response.status_code == 201, response.json()
    assert response.json()["filename"] == "upload.csv"
    assert dict(study.prompts.values_list("external_id", "text")) == {"p1": "two\nlines, and a comma",
                                                                     "p2": "plain ✓"}


def test_empty_raw_body_names_the_file_field(api, study):
    response = api.generic("POST", f"{API}/studies/{study.slug}/prompts/import/", b"",
                           content_type="application/jsonl")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "file"


def test_unsupported_content_type_is_415(api, study):
    response = api.post(f"{API}/studies/{study.slug}/prompts/import/", {"id": "a"}, format="json")
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


@pytest.mark.parametrize("raw", [False, True])
def test_file_over_the_size_limit_is_refused(api, study, settings, raw):
    settings.IMPORT_MAX_BYTES = 2048
    data = jsonl(*({"id": f"p{i}", "prompt": "x" * 100} for i in range(40)))
    url = f"{API}/studies/{study.slug}/prompts/import/"
    if raw:
        response = api.generic("POST", url, data, content_type="application/jsonl")
    else:
        response = api.post(url, {"file": upload("big.jsonl", data)})
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert f"the file is {len(data):,} bytes, over the limit of 2,048 bytes" in message
    assert not study.prompts.exists()


# --- lists ----------------------------------------------------------------------------------------------

def test_prompts_are_paginated_and_filtered_by_category(api, study):
    rows = [{"id": f"p{i}", "prompt": f"q{i}", **({"category": "math"} if i % 3 == 0 else {})} for i in range(10)]
    api.post(f"{API}/studies/{study.slug}/prompts/import/", {"file": upload("p.jsonl", jsonl(*rows))})
    page = api.get(f"{API}/studies/{study.slug}/prompts/", {"limit": 4, "offset": 4}).json()
    assert page["count"] == 10 and [p["id"] for p in page["results"]] == ["p4", "p5", "p6", "p7"]
    math = api.get(f"{API}/studies/{study.slug}/prompts/", {"category": "math"}).json()
    assert [p["id"] for p in math["results"]] == ["p0", "p3", "p6", "p9"]
    uncategorised = api.get(f"{API}/studies/{study.slug}/prompts/", {"category": ""}).json()
    assert uncategorised["count"] == 6


def test_responses_filter_by_unknown_system_is_400(api):
    make_study_with_responses(slug="s")
    response = api.get(f"{API}/studies/s/responses/", {"system": "vicuna"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "system"
    assert "reference" in response.json()["detail"]
