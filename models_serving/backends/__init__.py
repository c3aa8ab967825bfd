"""Backends: how a batch of conversations becomes responses. One small interface, two implementations.

- `http.OpenAIHTTPBackend` (the default) talks to any OpenAI-compatible server: `vllm serve`, or OpenAI's API
  for the reference model. Asynchronous, with at most `concurrency` requests in flight, so vLLM's continuous
  batching stays full.
- `vllm_inprocess.VLLMInProcessBackend` loads the model into the worker process and calls `vllm.LLM.chat` on
  a batch. Only for a dedicated GPU worker on a solo pool (vLLM does not work in a prefork child); `vllm` is
  imported inside that module only.

A backend yields lists of results as they arrive (possibly empty lists, at least every `tick` seconds, so the
caller can write, beat its heartbeat and notice a cancel), and raises:

- EndpointFatal when the endpoint cannot work as configured (bad key, model not served): retrying cannot help.
- EndpointUnavailable when transient failures (connection, 408, 429, 5xx) outlasted the retries: try again later.

A prompt the server refuses for good (400, e.g. longer than the context) is a result with `error` set.
"""
from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# Our defaults, sent explicitly on every request: a server's own defaults are not ours (vLLM applies the
# model's generation_config.json, e.g. temperature 0.7, top_k 20, repetition_penalty 1.05, to anything a
# request leaves out). These are the OpenAI API's documented defaults, plus a bounded max_tokens and a seed
# so a run can be repeated.
DEFAULT_SAMPLING: dict[str, Any] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "max_tokens": 1024,
    "seed": 0,
    "stop": [],
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
# Parameters only vLLM knows (OpenAI's API refuses them), set to "off" so the model's generation_config.json
# cannot switch them on. Sent only to servers that say they are vLLM (owned_by "vllm" in /v1/models).
VLLM_NEUTRAL: dict[str, Any] = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}


def sampling_params_effective(params: dict | None) -> dict[str, Any]:
    """The endpoint's parameters with our defaults filled in: exactly what every request carries."""
    effective = dict(DEFAULT_SAMPLING)
    effective.update(params or {})
    if isinstance(effective.get("stop"), str):
        effective["stop"] = [effective["stop"]]
    return effective


@dataclass(frozen=True)
class GenerationRequest:
    key: int  # the prompt's primary key; results carry it back
    messages: list[dict]


@dataclass
class GenerationResult:
    key: int
    text: str | None = None
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    attempts: int = 1
    error: str = ""  # set when the server refused this prompt for good; text is None then
    status_code: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


class BackendError(Exception):
    pass


class EndpointFatal(BackendError):
    """The endpoint cannot work as configured; the job fails with this message."""


class EndpointUnavailable(BackendError):
    """Transient failures outlasted the retries; the chunk is tried again later."""


class Backend(ABC):
    #: What every request is sent with (filled in by the backend; recorded on each response).
    sampling_params: dict[str, Any]

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest], *,
                 stop: threading.Event) -> Iterator[list[GenerationResult]]:
        """Yield results as they arrive until every request has one, or until `stop` is set."""


def api_key_from_env(name: str) -> str | None:
    """The key held by the environment variable `name` on this worker; None when no variable is named."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise EndpointFatal(f"The environment variable {name} (the endpoint's api_key_env) is not set on the "
                            "worker. Set it to the server's API key where the workers run, then start again.")
    return value


def backend_for_job(job) -> Backend:
    """The backend a GenerationJob's copied endpoint settings call for."""
    from models_serving.models import Endpoint

    if job.backend == Endpoint.Backend.VLLM:
        from models_serving.backends.vllm_inprocess import VLLMInProcessBackend

        return VLLMInProcessBackend(model=job.model, batch_size=job.concurrency, params=job.sampling_params)
    from models_serving.backends.http import OpenAIHTTPBackend

    return OpenAIHTTPBackend(base_url=job.base_url, model=job.model, api_key=api_key_from_env(job.api_key_env),
                             concurrency=job.concurrency, params=job.sampling_params)
