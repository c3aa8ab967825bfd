"""The generation pages, driven through Django's test client as a researcher would use them.

Enqueuing is replaced by a recorder: these tests are about the pages, and must not depend on whether this
run has a broker (CI has one, a laptop may not). The workers' side is in test_worker.py.
"""
from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from evalsite.studies.models import Response
from models_serving import services, views
from models_serving.backends.http import OpenAIHTTPBackend
from models_serving.models import Endpoint, GenerationJob
from tests.factories import StudyFactory, SystemFactory
from tests.serving.conftest import MODEL, make_generation_study

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def text(response) -> str:
    return htmllib.unescape(response.content.decode())


@pytest.fixture
def enqueued(monkeypatch):
    """The chunks the pages sent to the workers, with a broker pretended to be there."""
    sent = []
    monkeypatch.setattr(views, "workers_available", lambda: True)
    monkeypatch.setattr(services, "enqueue_chunk", lambda chunk, **kw: sent.append(chunk))
    return sent


def post_and_commit(client, address, capture, **kwargs):
    """POST as the real site does: the transaction commits, so on_commit hooks (enqueuing) run."""
    with capture(execute=True):
        return client.post(address, **kwargs)


@pytest.fixture
def setup(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=5)
    return study, system


def url(name: str, *args) -> str:
    return reverse(f"generation:{name}", args=args)


def test_pages_are_for_researchers_only(client, outsider, setup):
    study, system = setup
    job = services.generation_job_start(system=system, enqueue=False)
    urls = [("get", url("overview", study.slug)), ("get", url("endpoint_edit", study.slug, system.pk)),
            ("post", url("endpoint_edit", study.slug, system.pk)), ("post", url("endpoint_check", study.slug, system.pk)),
            ("post", url("endpoint_delete", study.slug, system.pk)), ("post", url("start", study.slug, system.pk)),
            ("get", url("job", study.slug, job.pk)), ("post", url("job_cancel", study.slug, job.pk)),
            ("post", url("job_retry_failed", study.slug, job.pk)), ("post", url("job_resume", study.slug, job.pk))]
    for method, address in urls:
        assert getattr(client, method)(address).status_code == 302, address  # to the login page
    client.force_login(outsider)
    for method, address in urls:
        assert getattr(client, method)(address).status_code == 403, address
    assert GenerationJob.objects.get().status == GenerationJob.Status.QUEUED


def test_the_overview_lists_systems_endpoints_and_what_is_missing(researcher_client, setup):
    study, system = setup
    page = text(researcher_client.get(url("overview", study.slug)))
    assert f"<code>{MODEL}</code> at <code>{system.endpoint.base_url}</code>" in page
    assert "0 / 5" in page and "5 missing" in page
    assert "Generate 5 missing" in page
    assert "none: responses come from uploaded files" in page  # the reference has no endpoint


def test_without_a_broker_the_page_says_to_use_the_command(researcher_client, setup, monkeypatch):
    study, system = setup
    monkeypatch.setattr(views, "workers_available", lambda: False)
    page = text(researcher_client.get(url("overview", study.slug)))
    assert "No task queue is configured" in page and f"python manage.py generate {study.slug} SYSTEM" in page
    response = researcher_client.post(url("start", study.slug, system.pk), follow=True)
    assert f"python manage.py generate {study.slug} koala" in text(response)
    assert not GenerationJob.objects.exists()


def test_adding_an_endpoint_saves_it_and_checks_its_fields(researcher_client, openai_server):
    study = StudyFactory()
    system = SystemFactory(study=study, name="vicuna")
    address = url("endpoint_edit", study.slug, system.pk)
    bad = researcher_client.post(address, {"backend": "http", "base_url": "ftp://x", "model": "v",
                                           "api_key_env": "sk-abcdefghijklmnopqrstuvwxyz123456", "concurrency": 0,
                                           "params": '{"temperature": 5, "best_of": 2}'})
    page = text(bad)
    assert bad.status_code == 200 and not Endpoint.objects.exists()
    assert "looks like an API key itself" in page and "sk-abcdefghijklmnopqrstuvwxyz123456" not in page
    assert "temperature: must be a number from 0 to 2, got 5." in page and "best_of: unknown sampling parameter" in page
    assert "greater than or equal to 1" in page
    researcher_client.post(address, {"backend": "http", "base_url": "ftp://x", "model": "v", "concurrency": 4})
    assert not Endpoint.objects.exists()
    saved = researcher_client.post(address, {"backend": "http", "base_url": openai_server.base_url, "model": MODEL,
                                             "api_key_env": "VLLM_API_KEY", "concurrency": 16,
                                             "params": '{"temperature": 0.7, "seed": 1}'})
    assert saved.status_code == 302
    endpoint = Endpoint.objects.get(system=system)
    assert (endpoint.model, endpoint.concurrency, endpoint.api_key_env, endpoint.params) == (
        MODEL, 16, "VLLM_API_KEY", {"temperature": 0.7, "seed": 1})
    form = text(researcher_client.get(address))
    assert 'value="VLLM_API_KEY"' in form and "Remove endpoint" in form


def test_an_http_endpoint_needs_a_base_url_but_an_in_process_one_does_not(researcher_client):
    study = StudyFactory()
    system = SystemFactory(study=study, name="vicuna")
    address = url("endpoint_edit", study.slug, system.pk)
    missing = researcher_client.post(address, {"backend": "http", "model": "v", "concurrency": 4})
    assert "Required for an OpenAI-compatible server" in text(missing)
    researcher_client.post(address, {"backend": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "concurrency": 32})
    assert Endpoint.objects.get(system=system).backend == Endpoint.Backend.VLLM


def test_check_says_whether_the_server_serves_the_model(researcher_client, setup):
    study, system = setup
    address = url("endpoint_check", study.slug, system.pk)
    answer = text(researcher_client.post(address, headers=HTMX))
    assert "notice-success" in answer and f"serves '{MODEL}'" in answer
    Endpoint.objects.filter(system=system).update(model="llama-70b")
    answer = researcher_client.post(address, follow=True)  # without JavaScript: a message on the overview
    assert "does not serve the model 'llama-70b'; it serves: koala-13b" in text(answer)


def test_starting_generation_queues_a_job_and_shows_its_progress(researcher_client, setup, enqueued,
                                                                 django_capture_on_commit_callbacks):
    study, system = setup
    response = post_and_commit(researcher_client, url("start", study.slug, system.pk),
                               django_capture_on_commit_callbacks)
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url("job", study.slug, job.pk)
    assert [chunk.index for chunk in enqueued] == [0]
    page = text(researcher_client.get(response["Location"]))
    assert "Job #" in page and "Queued" in page and "0 <small>/ 5</small>" in page
    assert f'hx-get="{url("job", study.slug, job.pk)}?polling=1" hx-trigger="every 2s"' in page
    again = researcher_client.post(url("start", study.slug, system.pk), follow=True)
    assert f"Job #{job.pk} is already generating responses for 'koala'" in text(again)


def test_progress_shows_counts_rate_and_eta_and_stops_polling_when_done(researcher_client, setup):
    study, system = setup
    job = services.generation_job_start(system=system, enqueue=False)
    chunk = job.chunks.get()
    # Two of five prompts done in 10 s, then look at the panel as htmx polls it.
    for prompt_id in chunk.prompt_ids[:2]:
        Response.objects.create(prompt_id=prompt_id, system=system, text="x", source="generation",
                                generation_job_id=job.pk)
    now = timezone.now()
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING, heartbeat_at=now,
                                                   started_at=now - timedelta(seconds=10))
    panel = researcher_client.get(url("job", study.slug, job.pk) + "?polling=1", headers=HTMX)
    body = text(panel)
    assert panel.status_code == 200 and 'id="job-progress"' in body and "<html" not in body
    assert "2 <small>/ 5</small>" in body and "Running" in body
    # 2 done in about 10 s (a slow machine may take a moment to answer): 0.2 per second, 3 more in 15 s.
    rate = float(re.search(r'>([\d.]+)</span><span class="stat-label">prompts per second', body).group(1))
    eta = int(re.search(r'>(\d+) s</span><span class="stat-label">left \(estimate\)', body).group(1))
    assert 0.15 <= rate <= 0.2 and 15 <= eta <= 20
    assert "HX-Refresh" not in panel
    services.generation_job_run_inline(job=job, backend_factory=lambda j: OpenAIHTTPBackend(
        base_url=j.base_url, model=j.model, api_key=None, concurrency=2, params={}))
    done = researcher_client.get(url("job", study.slug, job.pk) + "?polling=1", headers=HTMX)
    assert done["HX-Refresh"] == "true"  # one reload shows the final page
    assert "hx-trigger" not in text(done) and "5 <small>/ 5</small>" in text(done) and "took" in text(done)


def test_failed_prompts_are_listed_with_reasons_and_can_be_retried(researcher_client, openai_server, enqueued,
                                                                   django_capture_on_commit_callbacks):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=4, texts={2: "word " * 5000})
    job = services.generation_job_run_inline(job=services.generation_job_start(system=system, enqueue=False))
    page = text(researcher_client.get(url("job", study.slug, job.pk)))
    assert "<code>q2</code>" in page and "maximum context length is 4096 tokens" in page and "Retry 1 failed" in page
    response = post_and_commit(researcher_client, url("job_retry_failed", study.slug, job.pk),
                               django_capture_on_commit_callbacks)
    retry = GenerationJob.objects.exclude(pk=job.pk).get()
    assert response["Location"] == url("job", study.slug, retry.pk)
    assert (retry.retry_of, retry.total) == (job, 1) and [c.job_id for c in enqueued] == [retry.pk]


def test_cancel_from_the_page_ends_the_job(researcher_client, setup, enqueued):
    study, system = setup
    researcher_client.post(url("start", study.slug, system.pk))
    job = GenerationJob.objects.get()
    page = text(researcher_client.post(url("job_cancel", study.slug, job.pk), follow=True))
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED and f"Job #{job.pk} cancelled" in page
    again = text(researcher_client.post(url("job_cancel", study.slug, job.pk), follow=True))
    assert "had already ended (cancelled)" in again


def test_a_stalled_job_offers_resume_which_sends_its_chunk_again(researcher_client, setup, enqueued,
                                                                 django_capture_on_commit_callbacks):
    study, system = setup
    job = services.generation_job_start(system=system, enqueue=False)
    GenerationJob.objects.filter(pk=job.pk).update(created_at=job.created_at.replace(year=2000))
    page = text(researcher_client.get(url("job", study.slug, job.pk)))
    assert "No worker has shown a sign of life" in page and ">Resume</button>" in page
    post_and_commit(researcher_client, url("job_resume", study.slug, job.pk), django_capture_on_commit_callbacks)
    assert [chunk.index for chunk in enqueued] == [0]


def test_a_job_of_another_study_is_not_found(researcher_client, setup):
    study, system = setup
    job = services.generation_job_start(system=system, enqueue=False)
    other = StudyFactory()
    assert researcher_client.get(url("job", other.slug, job.pk)).status_code == 404
    assert researcher_client.post(url("job_cancel", other.slug, job.pk)).status_code == 404
