"""Generation jobs run in this process (services and manage.py generate), against the test server.

Inline runs call the services directly: they must not depend on Celery's eager mode, which is off when
CELERY_BROKER_URL is set (as in CI). The real-worker tests are in test_worker.py.
"""
from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from evalsite.studies.models import Comparison, Prompt, Response
from evalsite.studies.services import GeneratedText, comparisons_build, response_upsert_generated
from models_serving import services
from models_serving.backends import DEFAULT_SAMPLING, VLLM_NEUTRAL
from models_serving.backends.http import OpenAIHTTPBackend, RetryPolicy
from models_serving.models import GenerationChunk, GenerationJob
from tests.factories import ResponseFactory
from tests.serving.conftest import MODEL, make_generation_study

pytestmark = pytest.mark.django_db

LONG = "word " * 5000  # longer than the test server's 4096-token context: it answers 400


def fast_backend(job):
    """The production backend with quick retries, so tests of retrying take milliseconds."""
    return OpenAIHTTPBackend(base_url=job.base_url, model=job.model, api_key=None, concurrency=job.concurrency,
                             params=job.sampling_params, retry=RetryPolicy(attempts=5, base=0.02, cap=0.1), tick=0.05)


def run_inline(job, **kwargs):
    return services.generation_job_run_inline(job=job, backend_factory=fast_backend, sleep=lambda s: None, **kwargs)


def test_a_job_covers_only_the_missing_prompts_in_chunks(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=120, concurrency=4)
    already = Prompt.objects.get(study=study, external_id="q3")
    ResponseFactory(prompt=already, system=system, text="imported")
    job = services.generation_job_start(system=system, enqueue=False)
    assert job.total == 119 and job.status == GenerationJob.Status.QUEUED
    assert job.chunk_size == services.MIN_CHUNK == 50
    chunks = list(job.chunks.order_by("index"))
    assert [len(c.prompt_ids) for c in chunks] == [50, 50, 19]
    assert already.pk not in {pk for c in chunks for pk in c.prompt_ids}
    assert job.sampling_params == DEFAULT_SAMPLING and (job.base_url, job.model) == (openai_server.base_url, MODEL)


def test_a_job_stores_every_response_with_its_provenance(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=12,
                                          params={"temperature": 0.7, "seed": 42, "max_tokens": 64})
    Prompt.objects.filter(study=study, external_id="q5").update(text="I am ChatGPT, trained by OpenAI")
    job = run_inline(services.generation_job_start(system=system, enqueue=False))
    assert (job.status, job.succeeded, job.failed, job.error) == (GenerationJob.Status.DONE, 12, 0, "")
    assert job.finished_at and job.started_at
    response = Response.objects.get(system=system, prompt__external_id="q1")
    assert response.text == "Answer to: Question 1?"
    assert response.source == Response.Source.GENERATION and response.generation_job_id == job.pk
    assert (response.model_name, response.seed, response.finish_reason) == (MODEL, 42, "stop")
    assert response.sampling_params == {**DEFAULT_SAMPLING, "temperature": 0.7, "seed": 42, "max_tokens": 64,
                                        **VLLM_NEUTRAL}
    assert (response.prompt_tokens, response.completion_tokens) == (2, 4)
    assert response.latency_ms is not None and response.meta["endpoint"] == openai_server.base_url
    assert response.names_model == ""
    assert Response.objects.get(system=system, prompt__external_id="q5").names_model == "ChatGPT"


def test_a_multi_turn_prompt_is_generated_from_its_messages(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=0)
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "And goodbye?"}]
    Prompt.objects.create(study=study, external_id="chat", messages=turns)
    run_inline(services.generation_job_start(system=system, enqueue=False))
    assert openai_server.stats.bodies[0]["messages"] == turns
    assert Response.objects.get(system=system).text == "Answer to: And goodbye?"


def test_running_again_generates_only_what_is_missing(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=6)
    run_inline(services.generation_job_start(system=system, enqueue=False))
    Prompt.objects.bulk_create([Prompt(study=study, external_id=f"new{i}", text=f"New {i}", position=10 + i)
                                for i in range(2)])
    before = openai_server.stats.completions
    second = run_inline(services.generation_job_start(system=system, enqueue=False))
    assert second.total == 2 and second.succeeded == 2
    assert openai_server.stats.completions - before == 2
    assert Response.objects.filter(system=system).count() == 8
    with pytest.raises(services.GenerationError, match="Nothing to generate: every prompt"):
        services.generation_job_start(system=system, enqueue=False)


def test_a_400_fails_only_its_prompt_and_the_job_ends_done_listing_it(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=10, texts={4: LONG})
    job = run_inline(services.generation_job_start(system=system, enqueue=False))
    assert (job.status, job.succeeded, job.failed) == (GenerationJob.Status.DONE, 9, 1)
    (failure,) = job.failures.all()
    assert failure.prompt.external_id == "q4" and failure.status_code == 400
    assert "maximum context length is 4096 tokens" in failure.message
    assert not Response.objects.filter(system=system, prompt__external_id="q4").exists()


def test_retrying_failed_prompts_generates_just_those(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=5)
    openai_server.on("Question 2?", ["400", "ok"])
    first = run_inline(services.generation_job_start(system=system, enqueue=False))
    assert (first.succeeded, first.failed) == (4, 1)
    retry = run_inline(services.generation_job_retry_failed(job=first, enqueue=False))
    assert (retry.retry_of, retry.total, retry.succeeded, retry.failed) == (first, 1, 1, 0)
    assert Response.objects.filter(system=system).count() == 5
    with pytest.raises(services.GenerationError, match="no failed prompts"):
        services.generation_job_retry_failed(job=retry, enqueue=False)


def test_transient_failures_are_retried_and_succeed(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=6,
                                          texts={1: "flaky A", 2: "flaky B"})
    openai_server.on("flaky", ["429", "503", "drop", "ok"])
    job = run_inline(services.generation_job_start(system=system, enqueue=False))
    assert (job.status, job.succeeded, job.failed) == (GenerationJob.Status.DONE, 6, 0)
    assert Response.objects.get(system=system, prompt__external_id="q1").meta["attempts"] > 1


def test_only_one_job_at_a_time_per_system(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=3)
    job = services.generation_job_start(system=system, enqueue=False)
    with pytest.raises(services.GenerationError, match=f"Job #{job.pk} is already generating"):
        services.generation_job_start(system=system, enqueue=False)


def test_a_system_without_endpoint_cannot_generate(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=3)
    system.endpoint.delete()
    system.refresh_from_db()
    with pytest.raises(services.GenerationError, match="has no endpoint"):
        services.generation_job_start(system=system, enqueue=False)


def test_starting_enqueues_the_first_chunk_only_when_the_transaction_commits(openai_server, monkeypatch,
                                                                                django_capture_on_commit_callbacks):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=3)
    sent = []
    monkeypatch.setattr(services, "enqueue_chunk", lambda chunk, **kw: sent.append(chunk.index))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.generation_job_start(system=system)
        assert sent == []
    assert len(callbacks) == 1 and sent == [0]


def test_cancel_stops_a_running_job_within_seconds(openai_server):
    openai_server.delay = 0.2
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=200, concurrency=4)
    job = services.generation_job_start(system=system, enqueue=False)
    cancelled_at = []

    def progress(stored, failed):
        # The researcher presses Cancel once a few responses are in (the runner sees it in the database).
        if not cancelled_at and Response.objects.filter(system=system).count() >= 8:
            services.generation_job_cancel(job=GenerationJob.objects.get(pk=job.pk))
            cancelled_at.append(time.monotonic())

    ended = run_inline(job, progress=progress)
    assert ended.status == GenerationJob.Status.CANCELLED
    assert time.monotonic() - cancelled_at[0] < 5  # the runner looks every second
    stored = Response.objects.filter(system=system).count()
    assert 8 <= stored < 120 and ended.succeeded == stored
    requests = openai_server.stats.requests
    time.sleep(0.5)
    assert openai_server.stats.requests == requests  # nothing is sent after the cancel


def test_a_chunk_that_runs_twice_writes_each_response_once(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=8)
    job = services.generation_job_start(system=system, enqueue=False)
    chunk = job.chunks.get()
    assert services.generation_chunk_run(chunk_id=chunk.pk, runner_id="a", backend_factory=fast_backend).kind == "done"
    # A redelivered message for the same chunk (the worker died before acknowledging it).
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=GenerationChunk.Status.PENDING)
    requests_before = openai_server.stats.requests
    assert services.generation_chunk_run(chunk_id=chunk.pk, runner_id="b", backend_factory=fast_backend).kind == "done"
    assert openai_server.stats.requests == requests_before
    assert Response.objects.filter(system=system).count() == 8


def test_a_claim_with_a_fresh_heartbeat_is_left_alone_and_a_stale_one_is_taken_over(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=4)
    job = services.generation_job_start(system=system, enqueue=False)
    chunk = job.chunks.get()
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=GenerationChunk.Status.RUNNING, claimed_by="dead",
                                                       heartbeat_at=timezone.now())
    assert services.generation_chunk_run(chunk_id=chunk.pk, runner_id="new", backend_factory=fast_backend).kind == "busy"
    assert services.generation_job_advance(job_id=job.pk) == ("busy", None)
    stale = timezone.now() - timedelta(seconds=services.STALE_AFTER_SECONDS + 5)
    GenerationChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=stale)
    GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert services.generation_chunk_run(chunk_id=chunk.pk, runner_id="new", backend_factory=fast_backend).kind == "done"
    assert Response.objects.filter(system=system).count() == 4


def test_recovery_enqueues_the_chunk_a_dead_worker_held(openai_server, monkeypatch):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=4)
    job = services.generation_job_start(system=system, enqueue=False)
    sent = []
    monkeypatch.setattr(services, "enqueue_chunk", lambda chunk, **kw: sent.append(chunk.pk))
    chunk = job.chunks.get()
    now = timezone.now()
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=GenerationChunk.Status.RUNNING, claimed_by="dead",
                                                       heartbeat_at=now)
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING, heartbeat_at=now)
    assert services.generation_recover() == [] and sent == []  # its runner is alive
    stale = now - timedelta(seconds=services.STALE_AFTER_SECONDS + 5)
    GenerationChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=stale)
    GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert [c.pk for c in services.generation_recover()] == [chunk.pk] and sent == [chunk.pk]


def test_a_missing_api_key_variable_fails_the_job_saying_which(openai_server, monkeypatch):
    monkeypatch.delenv("EVALSITE_TEST_NO_SUCH_KEY", raising=False)
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=3,
                                          api_key_env="EVALSITE_TEST_NO_SUCH_KEY")
    job = services.generation_job_run_inline(job=services.generation_job_start(system=system, enqueue=False))
    assert job.status == GenerationJob.Status.FAILED
    assert "EVALSITE_TEST_NO_SUCH_KEY (the endpoint's api_key_env) is not set on the worker" in job.error
    assert openai_server.stats.requests == 0


def test_the_api_key_comes_from_the_variable_the_endpoint_names(monkeypatch):
    from models_serving.testserver import OpenAITestServer

    monkeypatch.setenv("EVALSITE_TEST_KEY", "s3cret-value")
    with OpenAITestServer(model=MODEL, api_key="s3cret-value") as server:
        study, system = make_generation_study(server_url=server.base_url, n_prompts=3, api_key_env="EVALSITE_TEST_KEY")
        job = services.generation_job_run_inline(job=services.generation_job_start(system=system, enqueue=False))
    assert (job.status, job.succeeded) == (GenerationJob.Status.DONE, 3)


def test_an_endpoint_that_stays_unavailable_fails_the_job_with_a_reason_to_act_on(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=3)
    openai_server.always(["503"])
    job = run_inline(services.generation_job_start(system=system, enqueue=False))
    assert job.status == GenerationJob.Status.FAILED
    assert job.error.startswith(f"Gave up after the endpoint was unavailable {services.MAX_CHUNK_ATTEMPTS} times")
    assert "HTTP 503" in job.error and "Start generation again once the server is up" in job.error
    assert job.chunks.get().attempts == services.MAX_CHUNK_ATTEMPTS


def test_a_generated_response_never_overwrites_one_that_has_judgments():
    from tests.factories import make_study_with_responses

    study = make_study_with_responses(n_prompts=2)
    comparisons_build(study=study)
    judged = Comparison.objects.filter(study=study).first()
    Comparison.objects.filter(pk=judged.pk).update(judgments_done=1)
    candidate = study.systems.get(name="candidate-1")
    judged_prompt = judged.prompt_id
    other_prompt = Prompt.objects.filter(study=study).exclude(pk=judged_prompt).get().pk
    result = response_upsert_generated(
        system=candidate, generation_job_id=99, model_name="m", sampling_params={"seed": 1}, seed=1,
        items=[GeneratedText(prompt_id=judged_prompt, text="new"), GeneratedText(prompt_id=other_prompt, text="new")],
    )
    assert result.kept_judged == [judged_prompt] and result.written == [other_prompt]
    assert Response.objects.get(system=candidate, prompt_id=judged_prompt).text != "new"
    overwritten = Response.objects.get(system=candidate, prompt_id=other_prompt)
    assert (overwritten.text, overwritten.source, overwritten.generation_job_id) == ("new", "generation", 99)


# --- manage.py generate --------------------------------------------------------------------------------

def test_the_generate_command_runs_the_job_here_and_reports(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=7, texts={2: LONG})
    out = StringIO()
    call_command("generate", study.slug, "koala", "--no-progress", stdout=out)
    text = out.getvalue()
    assert "6 responses stored, 1 prompt failed:" in text
    assert "q2: HTTP 400 Bad Request: This model's maximum context length" in text
    job = GenerationJob.objects.get(system=system)
    assert f"--retry-failed {job.pk}" in text
    assert Response.objects.filter(system=system).count() == 6


def test_the_generate_command_explains_unknown_names_and_nothing_to_do(openai_server):
    study, system = make_generation_study(server_url=openai_server.base_url, n_prompts=1)
    with pytest.raises(CommandError, match="has no system named 'nope' \\(systems: chatgpt, koala\\)"):
        call_command("generate", study.slug, "nope")
    call_command("generate", study.slug, "koala", "--no-progress", stdout=StringIO())
    with pytest.raises(CommandError, match="Nothing to generate"):
        call_command("generate", study.slug, "koala", "--no-progress", stdout=StringIO())
