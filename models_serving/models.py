"""Generation: where a system's responses come from (Endpoint) and the jobs that fetch them.

A GenerationJob covers the prompts a system had no response to when it started. It is cut into
GenerationChunks that run one after another (so the endpoint never sees more than its `concurrency` requests
from one job); a prompt the server refuses (HTTP 400, e.g. longer than the model's context) becomes a
GenerationFailure of that job while the rest goes on.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from evalsite.studies.models import Prompt, System


def validate_server_url(value: str) -> None:
    """An http(s) URL with a host. Unlike URLValidator, single-label hosts (`http://vllm:8000/v1`, a compose
    service name) are fine: that is how workers reach a vLLM server inside a cluster."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{value!r} is not an http(s) URL with a host, e.g. http://vllm:8000/v1.")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValidationError(f"{value!r} has an invalid port.") from None


class Endpoint(models.Model):
    """An OpenAI-compatible chat completions server (a `vllm serve` instance, or OpenAI for the reference).

    The API key is never stored: only the name of the environment variable that holds it on the workers.
    """

    class Backend(models.TextChoices):
        HTTP = "http", "OpenAI-compatible server (vllm serve, OpenAI)"
        VLLM = "vllm", "vLLM in the worker process (dedicated GPU worker)"

    system = models.OneToOneField(System, on_delete=models.CASCADE, related_name="endpoint")
    backend = models.CharField(
        max_length=10, choices=Backend.choices, default=Backend.HTTP,
        help_text="In-process vLLM runs only on a GPU worker consuming the generation_gpu queue with --pool=solo.",
    )
    base_url = models.CharField(
        max_length=500, blank=True, validators=[validate_server_url],
        help_text="e.g. http://vllm:8000/v1 (not used by the in-process backend)",
    )
    model = models.CharField(max_length=200, help_text="The model name the server serves (in process: a model "
                             "path or Hugging Face id).")
    api_key_env = models.CharField(
        max_length=100, blank=True,
        help_text="Name of the environment variable holding the API key (never the key itself).",
    )
    concurrency = models.PositiveIntegerField(
        default=64, validators=[MinValueValidator(1), MaxValueValidator(4096)],
        help_text="Requests kept in flight; vLLM batches only what is in flight.",
    )
    params = models.JSONField(
        default=dict, blank=True,
        help_text="Sampling parameters sent with every request: temperature, top_p, max_tokens, seed, stop.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(concurrency__gte=1), name="endpoint_concurrency_positive"),
            models.CheckConstraint(condition=~Q(model=""), name="endpoint_model_not_empty"),
        ]

    def __str__(self) -> str:
        if self.backend == self.Backend.VLLM:
            return f"{self.model} (vLLM in process)"
        return f"{self.model} at {self.base_url}"

    def clean(self) -> None:
        super().clean()
        if self.backend == self.Backend.HTTP and not self.base_url:
            raise ValidationError({"base_url": "The server's base URL is required, e.g. http://vllm:8000/v1."})


class GenerationJob(models.Model):
    """One run of generation for a system: the prompts it had no response to when the job started.

    The endpoint's settings are copied into the job, so editing the endpoint never changes a running job,
    and the job keeps a record of exactly what produced its responses.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="generation_jobs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    backend = models.CharField(max_length=10, choices=Endpoint.Backend.choices, default=Endpoint.Backend.HTTP)
    base_url = models.CharField(max_length=500, blank=True)
    model = models.CharField(max_length=200)
    api_key_env = models.CharField(max_length=100, blank=True)
    concurrency = models.PositiveIntegerField()
    sampling_params = models.JSONField(default=dict, help_text="Every parameter sent, defaults filled in.")
    chunk_size = models.PositiveIntegerField()
    total = models.PositiveIntegerField(default=0, help_text="Prompts to generate.")
    # Filled in when the job ends; while it runs, progress is counted from the rows themselves.
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the job failed, or the last transient problem.")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from a runner.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Two jobs for one system would generate the same prompts twice and double the endpoint's load.
            models.UniqueConstraint(fields=["system"], condition=Q(status__in=["queued", "running"]),
                                    name="generation_one_active_job_per_system"),
            models.CheckConstraint(condition=Q(concurrency__gte=1), name="generation_job_concurrency_positive"),
            models.CheckConstraint(condition=Q(chunk_size__gte=1), name="generation_job_chunk_size_positive"),
        ]

    def __str__(self) -> str:
        return f"Generation job #{self.pk} for {self.system.name}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class GenerationChunk(models.Model):
    """A slice of a job's prompts, run by one Celery task at a time.

    A runner claims the chunk (`claimed_by`, its task id) and keeps `heartbeat_at` fresh; a claim whose
    heartbeat has gone stale belongs to a runner that died, and the next task for the chunk takes it over.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    prompt_ids = models.JSONField(help_text="Primary keys of the chunk's prompts.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times the endpoint was unavailable for it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="generation_chunk_unique_index"),
        ]

    def __str__(self) -> str:
        return f"Chunk {self.index} of job #{self.job_id}"


class GenerationFailure(models.Model):
    """A prompt the server refused for good (e.g. 400: longer than the model's context), with its message."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="failures")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    status_code = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "prompt"]
        constraints = [
            models.UniqueConstraint(fields=["job", "prompt"], name="generation_failure_one_per_prompt"),
        ]

    def __str__(self) -> str:
        return f"{self.prompt.external_id}: {self.message[:80]}"
