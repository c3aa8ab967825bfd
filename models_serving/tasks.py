"""Celery tasks for generation. Thin: they take primary keys and call models_serving.services.

Queues: `generation` for the OpenAI-compatible HTTP backend (any prefork worker started with
`-Q generation`), `generation_gpu` for the in-process vLLM backend (a dedicated worker:
`celery -A evalsite worker -Q generation_gpu --pool=solo -c 1`). The queue is on each task and chosen per job
when enqueuing, so no CELERY_TASK_ROUTES entry is needed.

Every chunk task is acks_late (a worker that dies mid-chunk leaves the message to be redelivered) and has
time limits below the broker's visibility timeout (so a message is redelivered only when its worker really
died, never while it still runs). The chunk itself stops a little before the soft limit and continues in a
fresh task, so a slow endpoint never trips the limits. A worker that starts looks for chunks whose runner
died and enqueues them again, so a killed worker's job resumes without waiting out the visibility timeout.
"""
from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

logger = logging.getLogger(__name__)

VISIBILITY_TIMEOUT = int(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("visibility_timeout", 3600))
HARD_TIME_LIMIT = VISIBILITY_TIMEOUT - max(5, VISIBILITY_TIMEOUT // 10)
SOFT_TIME_LIMIT = HARD_TIME_LIMIT - max(5, HARD_TIME_LIMIT // 10)
# The chunk's own budget: it stops taking results here, stores them and continues in a new task.
RUN_BUDGET_SECONDS = SOFT_TIME_LIMIT - max(5, SOFT_TIME_LIMIT // 10)
DATABASE_RETRIES = 5
GENERATION_QUEUES = ("generation", "generation_gpu")


@shared_task(bind=True, name="models_serving.tasks.generation_chunk_task", queue="generation", acks_late=True,
             reject_on_worker_lost=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=HARD_TIME_LIMIT,
             max_retries=None)
def generation_chunk_task(self, chunk_id: int) -> str:
    from models_serving import services

    runner_id = self.request.id or f"task-{chunk_id}"
    deadline = time.monotonic() + RUN_BUDGET_SECONDS
    try:
        outcome = services.generation_chunk_run(chunk_id=chunk_id, runner_id=runner_id, deadline=deadline)
    except SoftTimeLimitExceeded:
        # The chunk was released; a fresh task continues with what is still missing.
        _enqueue_again(chunk_id)
        return "incomplete"
    except (OperationalError, InterfaceError) as exc:  # the database went away for a moment
        raise self.retry(exc=exc, countdown=services.chunk_retry_delay(self.request.retries + 1),
                         max_retries=DATABASE_RETRIES) from exc
    except Exception as exc:
        logger.exception("generation chunk %s failed", chunk_id)
        job_id = _job_id(chunk_id)
        if job_id is not None:
            services.generation_job_fail(job_id=job_id, reason=f"Internal error while generating ({type(exc).__name__}: "
                                         f"{exc}). The responses stored so far are kept; see the worker's log, then "
                                         "start generation again.")
        return "failed"

    if outcome.kind == "done":
        state, chunk = services.generation_job_advance(job_id=outcome.job_id)
        if state == "run" and chunk is not None:
            services.enqueue_chunk(chunk)
    elif outcome.kind == "incomplete":
        _enqueue_again(chunk_id)
    elif outcome.kind == "retry_later":
        if outcome.attempts >= services.MAX_CHUNK_ATTEMPTS:
            services.generation_job_fail(job_id=outcome.job_id, reason=services.give_up_reason(outcome))
        else:
            # Waiting longer than the visibility timeout would get the waiting message redelivered.
            countdown = min(services.chunk_retry_delay(outcome.attempts), VISIBILITY_TIMEOUT / 2)
            raise self.retry(countdown=countdown)
    return outcome.kind


def _job_id(chunk_id: int) -> int | None:
    from models_serving.models import GenerationChunk

    try:
        return GenerationChunk.objects.filter(pk=chunk_id).values_list("job_id", flat=True).first()
    except DatabaseError:
        return None


def _enqueue_again(chunk_id: int) -> None:
    from models_serving import services
    from models_serving.models import GenerationChunk

    chunk = GenerationChunk.objects.filter(pk=chunk_id).first()
    if chunk is not None:
        services.enqueue_chunk(chunk)


@shared_task(name="models_serving.tasks.generation_recover_task", queue="generation", acks_late=True,
             soft_time_limit=50, time_limit=55)
def generation_recover_task() -> int:
    """Enqueue again the chunks of active jobs that no live runner holds; how many."""
    from models_serving import services

    return len(services.generation_recover())


@worker_ready.connect
def recover_when_a_generation_worker_starts(sender=None, **kwargs) -> None:
    """A worker that consumes a generation queue looks, once claims of a dead runner have gone stale, for
    chunks to pick up again."""
    from models_serving.services import STALE_AFTER_SECONDS

    try:
        consumed = set(sender.app.amqp.queues.consume_from or ())
    except AttributeError:
        return
    for queue in GENERATION_QUEUES:
        if queue in consumed:
            generation_recover_task.apply_async(queue=queue, countdown=STALE_AFTER_SECONDS + 1)
            return


@worker_process_init.connect
def load_generation_code_in_each_pool_process(**kwargs) -> None:
    """Import the generation code when a pool process starts, not when the first chunk arrives, so the first
    chunk of a job is as fast as the others."""
    import models_serving.backends.http  # noqa: F401
    import models_serving.services  # noqa: F401
