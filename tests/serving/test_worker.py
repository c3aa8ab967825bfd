"""Generation through a REAL Celery worker and a REAL Redis broker (not inline).

The worker is `celery -A evalsite worker -Q generation,default --pool=prefork -c 2`, started as a subprocess
on the test database; the broker is Redis database 14 (GENERATION_TEST_REDIS_URL overrides it). The worker
is another process, so these tests need PostgreSQL (SQLite's test database lives in this process's memory)
and Redis: without them they are skipped, except under CI, where they fail.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.models import Count

from evalsite.celery import app as celery_app
from evalsite.studies.models import Response
from models_serving import services
from models_serving.models import GenerationJob
from models_serving.testserver import OpenAITestServer
from tests.serving.conftest import MODEL, make_generation_study

REDIS_URL = os.environ.get("GENERATION_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _missing_services() -> list[str]:
    problems = []
    if connection.vendor != "postgresql":
        problems.append("PostgreSQL (set DATABASE_URL=postgres://...; the worker is another process and "
                        "cannot see SQLite's in-memory test database)")
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure means: no usable Redis
        problems.append(f"Redis at {REDIS_URL} ({type(exc).__name__}: {exc})")
    return problems


def _require_services() -> None:
    problems = _missing_services()
    if problems:
        message = "real-worker generation tests need " + " and ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


class Worker:
    """A Celery worker subprocess in its own process group, so SIGKILL reaches its pool children too."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = self.log_dir / f"worker-{self.starts}.log"
        env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": REDIS_URL,
               "CELERY_BROKER_WRITE_URL": REDIS_URL,
               "DJANGO_SETTINGS_MODULE": "evalsite.settings", "PYTHONUNBUFFERED": "1",
               "SECRET_KEY": os.environ.get("SECRET_KEY", "tests-only-secret-key-0123456789abcdefghijklmnop")}
        command = [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", "generation,default",
                   "--pool=prefork", "-c", "2", "--loglevel=INFO", "-n", f"gentest-{uuid.uuid4().hex[:8]}@%h",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited at start:\n{self.log.read_text()[-3000:]}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker did not become ready in 60 s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: no warm shutdown, nothing acknowledged."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log and self.log.exists() else ""


def _use_broker(write_url: str | None, eager: bool) -> None:
    """Send this process's tasks to `write_url`. Celery reads the broker URL once, and prefers the environment's
    CELERY_BROKER_URL (CI sets one for the whole run) to its configuration, so the write URL goes through the
    environment too."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    if write_url is None:
        os.environ.pop("CELERY_BROKER_WRITE_URL", None)
    else:
        os.environ["CELERY_BROKER_WRITE_URL"] = write_url
    celery_app.conf.task_always_eager = eager


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """One worker for the module (it starts in seconds, not milliseconds); tests may kill and restart it."""
    with django_db_blocker.unblock():
        _require_services()
        import redis

        broker = redis.Redis.from_url(REDIS_URL)
        broker.flushdb()  # no message of an earlier run may reach this run's worker
        saved = (os.environ.get("CELERY_BROKER_WRITE_URL"), celery_app.conf.task_always_eager)
        _use_broker(REDIS_URL, eager=False)
        running = Worker(tmp_path_factory.mktemp("celery"))
        running.start()
        try:
            yield running
        finally:
            running.stop()
            _use_broker(*saved)
            broker.flushdb()


@pytest.fixture
def server():
    with OpenAITestServer(model=MODEL) as test_server:
        yield test_server


def wait_for(predicate, *, timeout: float, worker: Worker, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; worker log:\n{worker.tail()}")


def wait_until_ended(job: GenerationJob, worker: Worker, timeout: float = 60) -> GenerationJob:
    def ended():
        job.refresh_from_db()
        return not job.is_active

    wait_for(ended, timeout=timeout, worker=worker, what=f"job #{job.pk} to end (status {job.status})")
    return job


def start(system) -> GenerationJob:
    # As the web page does: the first chunk is sent to the broker when the transaction commits.
    return services.generation_job_start(system=system)


def test_a_200_prompt_job_completes_through_the_worker(worker, server):
    server.delay = 0.05
    study, system = make_generation_study(server_url=server.base_url, n_prompts=200, concurrency=8)
    job = wait_until_ended(start(system), worker)
    assert (job.status, job.succeeded, job.failed, job.error) == (GenerationJob.Status.DONE, 200, 0, "")
    assert job.chunks.filter(status="done").count() == 4
    assert Response.objects.filter(system=system, generation_job_id=job.pk).count() == 200
    assert server.max_in_flight == 8  # the endpoint's concurrency, never more
    assert server.stats.completions == 200


def test_a_worker_killed_mid_job_and_started_again_finishes_it_without_duplicates(worker, server):
    server.delay = 0.25
    study, system = make_generation_study(server_url=server.base_url, n_prompts=200, concurrency=4)
    job = start(system)
    wait_for(lambda: Response.objects.filter(system=system).count() >= 30, timeout=30, worker=worker,
             what="30 responses before the kill")
    worker.kill()
    stored_at_kill = Response.objects.filter(system=system).count()
    assert stored_at_kill < 200
    worker.start()
    job = wait_until_ended(job, worker, timeout=120)
    assert (job.status, job.succeeded, job.failed) == (GenerationJob.Status.DONE, 200, 0)
    per_prompt = Response.objects.filter(system=system).values("prompt").annotate(n=Count("pk"))
    assert len(per_prompt) == 200 and {row["n"] for row in per_prompt} == {1}
    # Sent twice: only what was in flight at the kill, or answered but not yet written (a tick's worth).
    assert 200 <= server.stats.completions <= 200 + 4 * system.endpoint.concurrency


def test_transient_failures_are_retried_by_the_worker_and_succeed(worker, server):
    study, system = make_generation_study(server_url=server.base_url, n_prompts=30, concurrency=4,
                                          texts={3: "flaky 3", 7: "flaky 7", 11: "dropped 11"})
    server.on("flaky", ["429", "503", "ok"])
    server.on("dropped", ["drop", "drop", "ok"])
    job = wait_until_ended(start(system), worker)
    assert (job.status, job.succeeded, job.failed) == (GenerationJob.Status.DONE, 30, 0)
    assert server.requests_for("flaky") == 6 and server.requests_for("dropped") == 3
    assert Response.objects.get(system=system, prompt__external_id="q11").text == "Answer to: dropped 11"


def test_a_400_fails_only_its_prompt_in_the_worker(worker, server):
    study, system = make_generation_study(server_url=server.base_url, n_prompts=20, concurrency=4,
                                          texts={5: "word " * 5000})
    job = wait_until_ended(start(system), worker)
    assert (job.status, job.succeeded, job.failed) == (GenerationJob.Status.DONE, 19, 1)
    (failure,) = job.failures.all()
    assert failure.prompt.external_id == "q5" and failure.status_code == 400
    assert "maximum context length is 4096 tokens" in failure.message


def test_cancel_stops_the_job_in_the_worker(worker, server):
    server.delay = 0.25
    study, system = make_generation_study(server_url=server.base_url, n_prompts=200, concurrency=4)
    job = start(system)
    wait_for(lambda: Response.objects.filter(system=system).count() >= 10, timeout=30, worker=worker,
             what="10 responses before cancelling")
    services.generation_job_cancel(job=job)
    # The runner looks at its job every second, then drops what is in flight; the server finishes those.
    time.sleep(1.5)
    wait_for(lambda: server.stats.in_flight == 0, timeout=10, worker=worker, what="the requests in flight to end")
    requests = server.stats.requests
    stored = Response.objects.filter(system=system).count()
    time.sleep(1.5)
    assert server.stats.requests == requests and Response.objects.filter(system=system).count() == stored
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED and job.succeeded == stored < 200
