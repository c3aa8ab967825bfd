"""Writes for generation: endpoints, jobs, and running a chunk of a job.

How a job runs (DESIGN.md, "Generation"):

- `generation_job_start` takes the prompts the system has no response to, copies the endpoint's settings into
  a GenerationJob, cuts the prompts into chunks and, once the transaction commits, enqueues the first chunk.
- A chunk task calls `generation_chunk_run`: it claims the chunk, sends its prompts through the backend with
  up to `concurrency` requests in flight, and stores each batch of results as it arrives (an idempotent upsert
  on (prompt, system)). Then `generation_job_advance` names the next chunk, or ends the job. Chunks of a job
  run one after another, so the endpoint never sees more than `concurrency` requests from a job.
- Safe to run twice: a redelivered chunk skips the prompts that already have a response, and a claim whose
  heartbeat went stale (its worker died) is taken over by the next task for the chunk.
- A prompt the server refuses (400) becomes a GenerationFailure and the job goes on; an endpoint that cannot
  work as configured (bad key, unknown model) fails the job at once with what to fix; an endpoint that stays
  unavailable is retried with backoff, then fails the job.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from evalsite.studies.models import Prompt, Response, System
from evalsite.studies.services import (
    GeneratedText,
    StudyRuleError,
    plural,
    response_upsert_generated,
)
from models_serving.backends import (
    Backend,
    EndpointFatal,
    EndpointUnavailable,
    GenerationRequest,
    GenerationResult,
    api_key_from_env,
    backend_for_job,
    sampling_params_effective,
)
from models_serving.models import Endpoint, GenerationChunk, GenerationFailure, GenerationJob

logger = logging.getLogger(__name__)

# A runner beats every HEARTBEAT_SECONDS (and then looks whether its job was cancelled); a claim without a
# beat for STALE_AFTER_SECONDS belongs to a runner that died.
HEARTBEAT_SECONDS = 1.0
STALE_AFTER_SECONDS = 30
# A chunk holds several "waves" of the endpoint's concurrency: enough that vLLM's batch stays full for most
# of the chunk and the per-chunk cost (a task, a claim, new connections) is small beside it; few enough that a
# chunk normally ends well within its task's time limit (and if not, it stops and continues in a new task).
CHUNK_WAVES = 8
MIN_CHUNK = 50
MAX_CHUNK = 2000
# How often a chunk may find the endpoint unavailable (after each request's own retries) before the job fails.
MAX_CHUNK_ATTEMPTS = 5
CHUNK_RETRY_BASE_SECONDS = 15
CHUNK_RETRY_CAP_SECONDS = 300

Progress = Callable[[int, int], None]  # (responses stored, prompts failed) since the last call


class GenerationError(StudyRuleError):
    """A generation request that cannot be carried out as asked; the message says why and what to do."""


# --- endpoints ------------------------------------------------------------------------------------------

def endpoint_save(*, system: System, backend: str = Endpoint.Backend.HTTP, base_url: str = "", model: str,
                  api_key_env: str = "", concurrency: int = 64, params: dict | None = None) -> Endpoint:
    """Create or replace the system's endpoint. Running jobs keep the settings they started with."""
    endpoint = Endpoint.objects.filter(system=system).first() or Endpoint(system=system)
    endpoint.backend, endpoint.base_url, endpoint.model = backend, base_url.strip(), model.strip()
    endpoint.api_key_env, endpoint.concurrency, endpoint.params = api_key_env.strip(), concurrency, params or {}
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: Endpoint) -> None:
    endpoint.delete()


def endpoint_check(*, endpoint: Endpoint):
    """Ask the server which models it serves (GET /models), with the key the web server can see."""
    from models_serving.backends.http import EndpointCheck, check_endpoint

    if endpoint.backend == Endpoint.Backend.VLLM:
        return EndpointCheck(ok=True, served_models=[], message="The in-process backend loads the model on the GPU "
                             "worker when a job starts; there is no server to check.")
    note = ""
    try:
        api_key = api_key_from_env(endpoint.api_key_env)
    except EndpointFatal:
        api_key = None
        note = (f" (The web server has no {endpoint.api_key_env} in its environment, so it checked without a key; "
                "the workers need it.)")
    check = check_endpoint(base_url=endpoint.base_url, model=endpoint.model, api_key=api_key)
    check.message += note
    return check


# --- starting, cancelling, retrying jobs ----------------------------------------------------------------

def chunk_size_for(concurrency: int) -> int:
    return min(MAX_CHUNK, max(MIN_CHUNK, concurrency * CHUNK_WAVES))


def missing_prompt_ids(*, system: System) -> list[int]:
    """The system's study's prompts without a response from it, in the study's order."""
    return list(Prompt.objects.filter(study_id=system.study_id).exclude(responses__system=system)
                .order_by("position", "pk").values_list("pk", flat=True))


def generation_job_start(*, system: System, user=None, prompt_ids: list[int] | None = None,
                         retry_of: GenerationJob | None = None, enqueue: bool = True) -> GenerationJob:
    """Start generating the system's missing responses (or only those among `prompt_ids`).

    The first chunk is enqueued when the transaction commits, so a worker never looks for a job that is not
    there yet. With enqueue=False the caller runs the job itself (`generation_job_run_inline`).
    """
    endpoint = Endpoint.objects.filter(system=system).first()
    if endpoint is None:
        raise GenerationError(f"System {system.name!r} has no endpoint: add one (where to generate and how) first.")
    missing = missing_prompt_ids(system=system)
    if prompt_ids is not None:
        wanted = set(prompt_ids)
        missing = [pk for pk in missing if pk in wanted]
    if not missing:
        raise GenerationError(f"Nothing to generate: every prompt of the study already has a response from "
                              f"{system.name!r}." if prompt_ids is None else
                              "Nothing to retry: those prompts have responses now, or are no longer in the study.")
    size = chunk_size_for(endpoint.concurrency)
    try:
        with transaction.atomic():
            job = GenerationJob.objects.create(
                system=system, backend=endpoint.backend, base_url=endpoint.base_url, model=endpoint.model,
                api_key_env=endpoint.api_key_env, concurrency=endpoint.concurrency,
                sampling_params=sampling_params_effective(endpoint.params), chunk_size=size, total=len(missing),
                retry_of=retry_of, created_by=user if getattr(user, "is_authenticated", False) else None,
            )
            GenerationChunk.objects.bulk_create([
                GenerationChunk(job=job, index=i, prompt_ids=missing[start:start + size])
                for i, start in enumerate(range(0, len(missing), size))
            ])
            if enqueue:
                first = job.chunks.get(index=0)
                transaction.on_commit(lambda: enqueue_chunk(first))
    except IntegrityError:
        active = GenerationJob.objects.filter(system=system, status__in=GenerationJob.ACTIVE).first()
        which = f"Job #{active.pk}" if active else "Another job"
        raise GenerationError(f"{which} is already generating responses for {system.name!r}: wait for it, or "
                              "cancel it and start again.") from None
    return job


def generation_job_retry_failed(*, job: GenerationJob, user=None, enqueue: bool = True) -> GenerationJob:
    """A new job for the prompts this job failed on (those still without a response)."""
    if job.is_active:
        raise GenerationError(f"Job #{job.pk} is still running; retry its failed prompts once it has ended.")
    prompt_ids = list(job.failures.values_list("prompt_id", flat=True))
    if not prompt_ids:
        raise GenerationError(f"Job #{job.pk} has no failed prompts to retry.")
    return generation_job_start(system=job.system, user=user, prompt_ids=prompt_ids, retry_of=job,
                                enqueue=enqueue)


def generation_job_cancel(*, job: GenerationJob) -> GenerationJob:
    """Stop the job: queued chunks are skipped, a running chunk stops within about a second."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if job.is_active:
            _end(job, GenerationJob.Status.CANCELLED)
    return job


def generation_job_resume(*, job: GenerationJob) -> GenerationChunk | None:
    """Enqueue the chunk a stalled job is waiting on (its worker died and no message is left for it)."""
    state, chunk = generation_job_advance(job_id=job.pk)
    if state == "run" and chunk is not None:
        transaction.on_commit(lambda: enqueue_chunk(chunk))
        return chunk
    return None


def generation_job_fail(*, job_id: int, reason: str) -> None:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        if job.is_active:
            _end(job, GenerationJob.Status.FAILED, error=reason)


def _end(job: GenerationJob, status: str, error: str = "") -> None:
    job.status = status
    job.succeeded = job_succeeded_count(job)
    job.failed = job.failures.count()
    job.finished_at = timezone.now()
    job.error = error
    job.save(update_fields=["status", "succeeded", "failed", "finished_at", "error"])


def job_succeeded_count(job: GenerationJob) -> int:
    return Response.objects.filter(system_id=job.system_id, generation_job_id=job.pk).count()


# --- moving a job along ---------------------------------------------------------------------------------

def _fresh(heartbeat_at) -> bool:
    return heartbeat_at is not None and heartbeat_at > timezone.now() - timedelta(seconds=STALE_AFTER_SECONDS)


def generation_job_advance(*, job_id: int) -> tuple[str, GenerationChunk | None]:
    """What the job needs next: ("run", chunk) to run, ("busy", None) while a live runner holds the current
    chunk, or ("ended", None) once the job has ended (this call ends it when every chunk is done)."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or not job.is_active:
            return "ended", None
        chunk = job.chunks.exclude(status=GenerationChunk.Status.DONE).order_by("index").first()
        if chunk is None:
            _end(job, GenerationJob.Status.DONE)
            return "ended", None
        if chunk.status == GenerationChunk.Status.RUNNING and _fresh(chunk.heartbeat_at):
            return "busy", None
        return "run", chunk


def generation_recover() -> list[GenerationChunk]:
    """Chunks of active jobs that nobody is running (a worker died, a message was lost): enqueue them again.

    Run when a worker starts (and periodically by beat, if scheduled). Sending a chunk twice is harmless:
    the second task finds it claimed or done.
    """
    stale_before = timezone.now() - timedelta(seconds=STALE_AFTER_SECONDS)
    recovered = []
    for job in GenerationJob.objects.filter(status__in=GenerationJob.ACTIVE):
        if job.heartbeat_at and job.heartbeat_at > stale_before:
            continue  # a runner is alive
        if job.heartbeat_at is None and job.created_at > stale_before:
            continue  # just created; its first chunk is on its way
        state, chunk = generation_job_advance(job_id=job.pk)
        if state == "run" and chunk is not None:
            enqueue_chunk(chunk)
            recovered.append(chunk)
    return recovered


def queue_for(job: GenerationJob) -> str:
    return "generation_gpu" if job.backend == Endpoint.Backend.VLLM else "generation"


def enqueue_chunk(chunk: GenerationChunk, *, countdown: float | None = None) -> None:
    from models_serving.tasks import generation_chunk_task

    job = GenerationJob.objects.only("backend").get(pk=chunk.job_id)
    generation_chunk_task.apply_async(args=[chunk.pk], queue=queue_for(job), countdown=countdown)


# --- running a chunk ------------------------------------------------------------------------------------

@dataclass
class ChunkOutcome:
    kind: str  # done | incomplete | retry_later | busy | ended
    job_id: int | None = None
    attempts: int = 0
    message: str = ""


def chunk_retry_delay(attempts: int) -> float:
    """Backoff between chunk attempts when the endpoint is unavailable: exponential, with jitter."""
    ceiling = min(CHUNK_RETRY_CAP_SECONDS, CHUNK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def generation_chunk_run(*, chunk_id: int, runner_id: str | None = None, deadline: float | None = None,
                         progress: Progress | None = None,
                         backend_factory: Callable[[GenerationJob], Backend] = backend_for_job) -> ChunkOutcome:
    """Run one chunk: claim it, generate what it still lacks, store results as they arrive.

    `deadline` (time.monotonic()) stops taking results in time for the task's limit: the chunk comes back
    "incomplete" and runs again from where it stopped.
    """
    runner_id = runner_id or f"runner-{uuid.uuid4().hex}"
    claimed = _chunk_claim(chunk_id, runner_id)
    if isinstance(claimed, ChunkOutcome):
        return claimed
    chunk, job = claimed

    pending = _pending_prompts(job, chunk)
    if not pending:
        _chunk_finish(chunk, runner_id)
        return ChunkOutcome("done", job.pk)
    requests = [GenerationRequest(key=prompt.pk, messages=prompt.turns) for prompt in pending]
    stop = threading.Event()
    outcome: ChunkOutcome | None = None
    try:
        backend = backend_factory(job)
        stream = backend.generate(requests, stop=stop)
        try:
            last_beat = time.monotonic()
            for batch in stream:
                if batch:
                    if backend.sampling_params != job.sampling_params:
                        # What was really sent (e.g. vLLM's extra parameters, known once the server answered).
                        job.sampling_params = dict(backend.sampling_params)
                        GenerationJob.objects.filter(pk=job.pk).update(sampling_params=job.sampling_params)
                    stored, failed = _store(job, backend, batch)
                    if progress:
                        progress(stored, failed)
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = now
                    if not _beat(chunk, job, runner_id):
                        stop.set()
                        outcome = ChunkOutcome("ended", job.pk)
                        break
                if deadline is not None and now >= deadline:
                    stop.set()
                    outcome = ChunkOutcome("incomplete", job.pk)
                    break
        finally:
            stream.close()
    except EndpointFatal as exc:
        generation_job_fail(job_id=job.pk, reason=str(exc))
        return ChunkOutcome("ended", job.pk, message=str(exc))
    except EndpointUnavailable as exc:
        attempts = _chunk_release(chunk, runner_id, count_attempt=True, error=str(exc))
        return ChunkOutcome("retry_later", job.pk, attempts=attempts, message=str(exc))
    except BaseException:
        # Whatever happened (a time limit, a database error), let the next task take the chunk at once.
        _chunk_release(chunk, runner_id)
        raise
    if outcome is not None:
        if outcome.kind == "incomplete":
            _chunk_release(chunk, runner_id)
        else:
            # The job ended (cancelled) while results were still arriving: its counts include them.
            GenerationJob.objects.filter(pk=job.pk).exclude(status__in=GenerationJob.ACTIVE).update(
                succeeded=job_succeeded_count(job), failed=job.failures.count())
        return outcome
    _chunk_finish(chunk, runner_id)
    return ChunkOutcome("done", job.pk)


def _chunk_claim(chunk_id: int, runner_id: str) -> tuple[GenerationChunk, GenerationJob] | ChunkOutcome:
    job_id = GenerationChunk.objects.filter(pk=chunk_id).values_list("job_id", flat=True).first()
    if job_id is None:
        return ChunkOutcome("ended")  # the job (or its system) was deleted
    with transaction.atomic():
        # Always the job first, then its chunk: every writer locks in this order, so none deadlock.
        job = GenerationJob.objects.select_for_update(of=("self",)).select_related("system").get(pk=job_id)
        chunk = GenerationChunk.objects.select_for_update().get(pk=chunk_id)
        if not job.is_active:
            return ChunkOutcome("ended", job.pk)
        if chunk.status == GenerationChunk.Status.DONE:
            return ChunkOutcome("done", job.pk)
        if (chunk.status == GenerationChunk.Status.RUNNING and chunk.claimed_by != runner_id
                and _fresh(chunk.heartbeat_at)):
            return ChunkOutcome("busy", job.pk)
        now = timezone.now()
        chunk.status, chunk.claimed_by, chunk.heartbeat_at = GenerationChunk.Status.RUNNING, runner_id, now
        chunk.save(update_fields=["status", "claimed_by", "heartbeat_at"])
        if job.status == GenerationJob.Status.QUEUED:
            job.status = GenerationJob.Status.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.save(update_fields=["status", "started_at", "heartbeat_at"])
    return chunk, job


def _pending_prompts(job: GenerationJob, chunk: GenerationChunk) -> list[Prompt]:
    ids = list(chunk.prompt_ids)
    answered = set(Response.objects.filter(system_id=job.system_id, prompt_id__in=ids)
                   .values_list("prompt_id", flat=True))
    failed = set(job.failures.filter(prompt_id__in=ids).values_list("prompt_id", flat=True))
    by_pk = Prompt.objects.in_bulk([pk for pk in ids if pk not in answered and pk not in failed])
    return [by_pk[pk] for pk in ids if pk in by_pk]


def _store(job: GenerationJob, backend: Backend, batch: list[GenerationResult]) -> tuple[int, int]:
    params = backend.sampling_params
    where = job.base_url or "in process"
    items = [GeneratedText(prompt_id=r.key, text=r.text or "", finish_reason=r.finish_reason,
                           prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
                           latency_ms=r.latency_ms, meta={"endpoint": where, "attempts": r.attempts, **r.meta})
             for r in batch if r.ok]
    result = response_upsert_generated(system=job.system, items=items, generation_job_id=job.pk,
                                       model_name=job.model, sampling_params=params, seed=params.get("seed"))
    failures = [GenerationFailure(job=job, prompt_id=r.key, status_code=r.status_code, message=r.error,
                                  attempts=r.attempts) for r in batch if not r.ok]
    failures += [GenerationFailure(job=job, prompt_id=pk, message="Not stored: a response to this prompt was "
                                   "imported while the job ran and already has judgments; it was kept.")
                 for pk in result.kept_judged]
    if failures:
        GenerationFailure.objects.bulk_create(failures, ignore_conflicts=True)
    return len(result.written), len(failures)


def _beat(chunk: GenerationChunk, job: GenerationJob, runner_id: str) -> bool:
    """Refresh the claim; False when the job has ended (cancelled, failed) or another runner took over."""
    now = timezone.now()
    held = GenerationChunk.objects.filter(pk=chunk.pk, claimed_by=runner_id,
                                          status=GenerationChunk.Status.RUNNING).update(heartbeat_at=now)
    active = GenerationJob.objects.filter(pk=job.pk, status__in=GenerationJob.ACTIVE).update(heartbeat_at=now)
    return bool(held and active)


def _chunk_release(chunk: GenerationChunk, runner_id: str, *, count_attempt: bool = False, error: str = "") -> int:
    with transaction.atomic():
        GenerationJob.objects.select_for_update().filter(pk=chunk.job_id).first()
        current = GenerationChunk.objects.select_for_update().get(pk=chunk.pk)
        if current.claimed_by == runner_id and current.status == GenerationChunk.Status.RUNNING:
            current.status, current.heartbeat_at = GenerationChunk.Status.PENDING, None
        if count_attempt:
            current.attempts += 1
        current.save(update_fields=["status", "heartbeat_at", "attempts"])
        if error:
            GenerationJob.objects.filter(pk=chunk.job_id).update(error=error)
    return current.attempts


def _chunk_finish(chunk: GenerationChunk, runner_id: str) -> None:
    with transaction.atomic():
        GenerationJob.objects.select_for_update().filter(pk=chunk.job_id).first()
        GenerationChunk.objects.filter(pk=chunk.pk).update(status=GenerationChunk.Status.DONE,
                                                           finished_at=timezone.now(), claimed_by=runner_id)


# --- running a whole job in this process (manage.py generate) -------------------------------------------

def generation_job_run_inline(*, job: GenerationJob, progress: Progress | None = None,
                              sleep: Callable[[float], None] = time.sleep,
                              backend_factory: Callable[[GenerationJob], Backend] = backend_for_job) -> GenerationJob:
    """Run the job's chunks one after another in this process, without a worker; returns the ended job.

    Used by `manage.py generate` (and tests). If a worker holds the current chunk, this waits for it.
    """
    runner_id = f"inline-{uuid.uuid4().hex}"
    while True:
        state, chunk = generation_job_advance(job_id=job.pk)
        if state == "ended":
            break
        if state == "busy":
            sleep(HEARTBEAT_SECONDS)
            continue
        outcome = generation_chunk_run(chunk_id=chunk.pk, runner_id=runner_id, progress=progress,
                                       backend_factory=backend_factory)
        if outcome.kind == "retry_later":
            if outcome.attempts >= MAX_CHUNK_ATTEMPTS:
                generation_job_fail(job_id=job.pk, reason=give_up_reason(outcome))
            else:
                sleep(chunk_retry_delay(outcome.attempts))
        elif outcome.kind == "busy":
            sleep(HEARTBEAT_SECONDS)
    job.refresh_from_db()
    return job


def give_up_reason(outcome: ChunkOutcome) -> str:
    return (f"Gave up after the endpoint was unavailable {plural(outcome.attempts, 'time')} in a row. "
            f"Last problem: {outcome.message} Start generation again once the server is up: it continues "
            "with the prompts still missing.")

