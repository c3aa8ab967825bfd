"""The in-process vLLM backend: the model lives in the worker process, `vllm.LLM.chat` runs a batch at a time.

Only for a dedicated GPU worker with a solo pool, consuming the `generation_gpu` queue:

    celery -A evalsite worker -Q generation_gpu --pool=solo --concurrency=1

vLLM starts CUDA and its own processes, which a forked prefork child cannot do; a solo pool runs tasks in the
worker's main process, where the model stays loaded between chunks. `vllm` is imported here only, so the web
server and the ordinary workers never need it.
"""
from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from models_serving.backends import (
    VLLM_NEUTRAL,
    Backend,
    EndpointFatal,
    GenerationRequest,
    GenerationResult,
    sampling_params_effective,
)

# One loaded model per process: loading takes minutes and the GPU holds one model at a time.
_loaded: dict[str, Any] = {}
_load_lock = threading.Lock()


def _llm(model: str):
    try:
        from vllm import LLM
    except ImportError:  # pragma: no cover - depends on the machine
        raise EndpointFatal("This endpoint uses the in-process vLLM backend, but vllm is not installed on this "
                            "worker. Run it on the GPU worker (pip install '.[vllm]', queue generation_gpu, "
                            "--pool=solo), or use an OpenAI-compatible server (vllm serve) instead.") from None
    with _load_lock:
        if model not in _loaded:
            for name in list(_loaded):  # free the GPU before loading another model
                del _loaded[name]
            gc.collect()
            try:
                _loaded[model] = LLM(model=model)
            except Exception as exc:
                raise EndpointFatal(f"vLLM could not load the model {model!r}: {exc}") from exc
        return _loaded[model]


class VLLMInProcessBackend(Backend):
    def __init__(self, *, model: str, batch_size: int, params: dict):
        self.model = model
        self.batch_size = max(1, int(batch_size))
        self.sampling_params = {**sampling_params_effective(params), **VLLM_NEUTRAL}

    def _vllm_sampling_params(self):
        from vllm import SamplingParams

        p = self.sampling_params
        return SamplingParams(
            n=1, temperature=p["temperature"], top_p=p["top_p"], top_k=p["top_k"], min_p=p["min_p"],
            max_tokens=p["max_tokens"], seed=p["seed"], stop=list(p["stop"]) or None,
            presence_penalty=p["presence_penalty"], frequency_penalty=p["frequency_penalty"],
            repetition_penalty=p["repetition_penalty"],
        )

    def generate(self, requests: Sequence[GenerationRequest], *,
                 stop: threading.Event) -> Iterator[list[GenerationResult]]:
        requests = list(requests)
        if not requests:
            return
        llm = _llm(self.model)
        sampling = self._vllm_sampling_params()
        for start in range(0, len(requests), self.batch_size):
            if stop.is_set():
                return
            yield self._batch(llm, sampling, requests[start:start + self.batch_size])

    def _batch(self, llm, sampling, batch: list[GenerationRequest]) -> list[GenerationResult]:
        started = time.monotonic()
        try:
            outputs = llm.chat([_messages(r) for r in batch], sampling, use_tqdm=False)
        except ValueError:
            # vLLM refuses a whole batch when one prompt is too long for the model; find which, one by one.
            return [result for request in batch for result in self._single(llm, sampling, request)]
        # llm.chat returns when the whole batch is done, so each response's latency is the batch's.
        latency_ms = int((time.monotonic() - started) * 1000)
        return [_result(request.key, output, latency_ms) for request, output in zip(batch, outputs, strict=True)]

    def _single(self, llm, sampling, request: GenerationRequest) -> list[GenerationResult]:
        started = time.monotonic()
        try:
            (output,) = llm.chat([_messages(request)], sampling, use_tqdm=False)
        except ValueError as exc:  # the in-process analogue of the server's 400
            return [GenerationResult(key=request.key, error=f"vLLM refused the prompt: {exc}"[:2000])]
        return [_result(request.key, output, int((time.monotonic() - started) * 1000))]


def _messages(request: GenerationRequest) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in request.messages]


def _result(key: int, output, latency_ms: int) -> GenerationResult:
    completion = output.outputs[0]
    return GenerationResult(
        key=key, text=completion.text, finish_reason=str(completion.finish_reason or ""),
        prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(completion.token_ids or []),
        latency_ms=latency_ms, meta={"completion_id": str(output.request_id)},
    )
