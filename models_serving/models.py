"""Where a system's responses can be generated: an OpenAI-compatible server and how to sample from it."""
from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from evalsite.studies.models import System


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

    system = models.OneToOneField(System, on_delete=models.CASCADE, related_name="endpoint")
    base_url = models.CharField(max_length=500, validators=[validate_server_url], help_text="e.g. http://vllm:8000/v1")
    model = models.CharField(max_length=200, help_text="The model name the server serves.")
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
        return f"{self.model} at {self.base_url}"
