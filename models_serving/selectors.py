"""Reads for the generation pages and command: progress, rate, ETA, failures, what is missing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from evalsite.studies.models import Prompt, Study, System
from models_serving.models import Endpoint, GenerationFailure, GenerationJob
from models_serving.services import STALE_AFTER_SECONDS, job_succeeded_count

# A job with no sign of life for this long is shown as stalled, with a Resume button.
STALLED_AFTER_SECONDS = 120


@dataclass
class JobProgress:
    job: GenerationJob
    total: int
    succeeded: int
    failed: int
    elapsed_seconds: float
    rate: float | None  # prompts finished (stored or failed) per second
    eta_seconds: float | None
    stalled: bool

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.finished)

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


def job_progress(*, job: GenerationJob, now: datetime | None = None) -> JobProgress:
    """Counts come from the rows while the job runs (exact even if a chunk ran twice), from the job once ended."""
    now = now or timezone.now()
    if job.is_active:
        succeeded, failed = job_succeeded_count(job), job.failures.count()
    else:
        succeeded, failed = job.succeeded, job.failed
    end = job.finished_at or now
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    finished = succeeded + failed
    rate = finished / elapsed if elapsed > 0 and finished else None
    remaining = max(0, job.total - finished)
    eta = remaining / rate if rate and job.is_active else None
    last_sign = job.heartbeat_at or job.created_at
    stalled = job.is_active and last_sign < now - timedelta(seconds=max(STALLED_AFTER_SECONDS, STALE_AFTER_SECONDS))
    return JobProgress(job=job, total=job.total, succeeded=succeeded, failed=failed, elapsed_seconds=elapsed,
                       rate=rate, eta_seconds=eta, stalled=stalled)


@dataclass
class SystemGeneration:
    system: System
    endpoint: Endpoint | None
    prompts: int
    responses: int
    active_job: GenerationJob | None
    last_job: GenerationJob | None

    @property
    def missing(self) -> int:
        return max(0, self.prompts - self.responses)


def study_generation(*, study: Study) -> list[SystemGeneration]:
    """Each system of the study: its endpoint, how many prompts it still lacks, its current or last job."""
    prompts = Prompt.objects.filter(study=study).count()
    systems = (System.objects.filter(study=study).select_related("endpoint")
               .annotate(n_responses=Count("responses", filter=Q(responses__prompt__study=study))))
    rows = []
    for system in systems:
        jobs = GenerationJob.objects.filter(system=system)
        active = jobs.filter(status__in=GenerationJob.ACTIVE).first()
        rows.append(SystemGeneration(
            system=system, endpoint=getattr(system, "endpoint", None), prompts=prompts,
            responses=system.n_responses, active_job=active, last_job=active or jobs.first(),
        ))
    return rows


def study_jobs(*, study: Study, limit: int = 20) -> list[GenerationJob]:
    return list(GenerationJob.objects.filter(system__study=study).select_related("system")[:limit])


def job_failures(*, job: GenerationJob, limit: int | None = 200):
    failures = GenerationFailure.objects.filter(job=job).select_related("prompt").order_by("prompt__position", "pk")
    return failures[:limit] if limit else failures


def format_duration(seconds: float | None) -> str:
    """'2 h 05 min', '3 min 20 s', '45 s'; '' when unknown."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"
