"""Site-wide plumbing: health check, offline API docs."""
import pytest


@pytest.mark.django_db
def test_healthz_answers_ok_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


@pytest.mark.django_db
def test_api_docs_load_their_assets_from_our_static_files(client):
    html = client.get("/api/v1/docs/").content.decode()
    assert "drf_spectacular_sidecar" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
