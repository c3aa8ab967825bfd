"""GET /api/v1/studies/<slug>/results/: permissions, the toggle, errors, and a schema that matches the body."""
from __future__ import annotations

import json

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.results.serializers import StudyResultsSerializer
from raters.models import Judgment
from tests.factories import UserFactory
from tests.raters.conftest import make_live_study
from tests.results.conftest import make_judged_study

pytestmark = pytest.mark.django_db

API = "/api/v1/studies"


def test_without_credentials_the_api_answers_401_with_a_token_challenge(judged_study):
    response = APIClient().get(f"{API}/{judged_study.slug}/results/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_a_token_of_a_non_researcher_gets_403(judged_study):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory()).key}")
    response = client.get(f"{API}/{judged_study.slug}/results/")
    assert response.status_code == 403 and "researchers" in response.json()["detail"]


def test_unknown_study_is_404_naming_the_slug(api):
    response = api.get(f"{API}/nope/results/")
    assert response.status_code == 404 and "'nope'" in response.json()["detail"]


def test_a_bad_toggle_value_is_a_400_naming_the_parameter(api, judged_study):
    response = api.get(f"{API}/{judged_study.slug}/results/?include_excluded=perhaps")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "include_excluded"


def test_researcher_token_gets_the_results_with_names_beside_indices(api, judged_study):
    body = api.get(f"{API}/{judged_study.slug}/results/").json()
    summary = body["summary"]
    assert body["study"] == judged_study.slug and body["include_excluded"] is False
    assert summary["systems"][0] == summary["reference_name"] == "reference"
    assert [s["name"] for s in body["systems"]] == summary["systems"]
    assert {h["candidate_name"] for h in summary["head_to_head"]} == {"candidate-1", "candidate-2"}
    assert summary["settings"]["rounds"] == 1000
    assert [series["key"] for series in body["scaling"]] == ["params_b", "imitation_tokens_m"]
    assert all(r["pseudonym"].startswith("r-") for r in summary["agreement"]["raters"])


def test_the_excluded_toggle_puts_the_excluded_judgments_back(api, judged_study):
    excluded = Judgment.objects.filter(comparison__study=judged_study, excluded=True, is_gold=False).count()
    default = api.get(f"{API}/{judged_study.slug}/results/").json()
    toggled = api.get(f"{API}/{judged_study.slug}/results/?include_excluded=true").json()
    assert default["judgments"]["excluded"] == toggled["judgments"]["excluded"] == excluded > 0
    assert toggled["judgments"]["used"] == default["judgments"]["used"] + excluded
    assert toggled["include_excluded"] is True and toggled["judgments"]["excluded_included"] is True


def test_an_empty_study_has_zero_counts_and_null_rates_not_an_error(api):
    study = make_live_study(n_prompts=2)
    body = api.get(f"{API}/{study.slug}/results/").json()
    assert body["judgments"]["used"] == 0
    assert body["summary"]["head_to_head"] == [] and body["summary"]["bradley_terry"]["ratings"] == []
    assert body["summary"]["agreement"]["percent"] is None
    assert body["summary"]["position_bias"]["left_share"] is None


def assert_matches(serializer, value, path="body"):
    """Every key of the JSON is declared by the serializer and every declared key is present, recursively."""
    if isinstance(serializer, serializers.ListSerializer):
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            assert_matches(serializer.child, item, f"{path}[{i}]")
        return
    if isinstance(serializer, serializers.Serializer):
        if value is None:
            assert serializer.allow_null, f"{path} is null but not nullable"
            return
        assert set(value) == set(serializer.fields), (path, set(value) ^ set(serializer.fields))
        for name, field in serializer.fields.items():
            assert_matches(field, value[name], f"{path}.{name}")
        return
    if value is None:
        assert serializer.allow_null, f"{path} is null but not nullable"
    elif isinstance(serializer, serializers.IntegerField):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif isinstance(serializer, serializers.FloatField):
        assert isinstance(value, int | float) and not isinstance(value, bool), path
    elif isinstance(serializer, serializers.BooleanField):
        assert isinstance(value, bool), path
    elif isinstance(serializer, serializers.ListField):
        assert isinstance(value, list), path
    elif isinstance(serializer, serializers.DictField):
        assert isinstance(value, dict), path
    elif isinstance(serializer, serializers.CharField | serializers.ChoiceField | serializers.DateTimeField):
        assert isinstance(value, str), path


@pytest.mark.parametrize("study_kwargs", [{}, {"scale": "ab_tie_strength"}, {"candidates": 1, "metadata": False}])
def test_the_response_has_exactly_the_shape_the_openapi_schema_declares(api, study_kwargs):
    study = make_judged_study(**study_kwargs)
    body = api.get(f"{API}/{study.slug}/results/").json()
    assert_matches(StudyResultsSerializer(), body)


def test_the_empty_response_also_has_the_declared_shape(api):
    study = make_live_study(n_prompts=2)
    assert_matches(StudyResultsSerializer(), api.get(f"{API}/{study.slug}/results/").json())


def test_schema_documents_the_results_and_export_endpoints():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    validate_schema(schema)
    results = schema["paths"]["/api/v1/studies/{slug}/results/"]["get"]
    assert results["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/StudyResults")
    assert {p["name"] for p in results["parameters"]} == {"slug", "include_excluded"}
    export = schema["paths"]["/api/v1/studies/{slug}/results/{what}.csv"]["get"]
    what = next(p for p in export["parameters"] if p["name"] == "what")
    assert what["schema"]["enum"] == ["audits", "findings", "judgments", "responses", "summary"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv"}
    assert {"StudyResults", "HeadToHead", "BradleyTerry", "StyleControl", "Agreement"} <= set(
        schema["components"]["schemas"])
