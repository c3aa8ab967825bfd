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


def test_rater_tokens_never_reach_the_logs():
    import logging

    from evalsite.log_filters import RedactRaterTokens

    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s",
                               ("/r/t/SeCrEtToKeN123/rate",), None)
    RedactRaterTokens().filter(record)
    assert record.getMessage() == "Not Found: /r/t/[token]/rate"


def test_log_records_with_mapping_arguments_pass_through_the_redaction():
    import logging

    from evalsite.log_filters import RedactRaterTokens

    record = logging.LogRecord("celery", logging.INFO, __file__, 1, "Task %(name)s at %(path)s",
                               ({"name": "reclaim", "path": "/r/t/abc/done"},), None)
    RedactRaterTokens().filter(record)
    assert record.getMessage() == "Task reclaim at /r/t/[token]/done"


@pytest.mark.django_db
def test_after_login_researchers_go_to_studies_and_experts_to_their_audit_queues(client):
    from django.contrib.auth.models import Group

    from tests.factories import ResearcherFactory, UserFactory

    client.force_login(ResearcherFactory())
    assert client.get("/")["Location"] == "/studies/"
    expert = UserFactory(username="expert")
    expert.groups.add(Group.objects.get_or_create(name="experts")[0])
    client.force_login(expert)
    assert client.get("/")["Location"] == "/audit/"
    client.logout()
    assert client.get("/")["Location"].startswith("/accounts/login/")
