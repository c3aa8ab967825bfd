"""The in-process vLLM backend on a real (small) model. Needs a CUDA GPU and vllm; skipped elsewhere.

The model is EVALSITE_TEST_VLLM_MODEL (default Qwen/Qwen2.5-0.5B-Instruct: small, with a chat template); it
must be loadable on the machine (a local path, or a Hugging Face id with the hub reachable or cached).
"""
from __future__ import annotations

import importlib.util
import os
import threading

import pytest

from models_serving.backends import GenerationRequest

pytestmark = pytest.mark.gpu

MODEL = os.environ.get("EVALSITE_TEST_VLLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")


def _why_not() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install '.[vllm]' on a GPU machine)"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


@pytest.fixture(scope="module")
def vllm_backend_class():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    from models_serving.backends.vllm_inprocess import VLLMInProcessBackend

    return VLLMInProcessBackend


def test_the_in_process_backend_answers_a_batch_and_refuses_only_the_prompt_too_long(vllm_backend_class):
    backend = vllm_backend_class(model=MODEL, batch_size=4, params={"temperature": 0, "max_tokens": 16, "seed": 0})
    requests = [GenerationRequest(key=i, messages=[{"role": "user", "content": f"Name a colour number {i}."}])
                for i in range(5)]
    requests.append(GenerationRequest(key=5, messages=[
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Say goodbye."}]))
    requests.append(GenerationRequest(key=6, messages=[{"role": "user", "content": "word " * 200_000}]))
    results = {r.key: r for batch in backend.generate(requests, stop=threading.Event()) for r in batch}
    assert sorted(results) == list(range(7))
    for key in range(6):
        result = results[key]
        assert result.ok and result.text.strip(), result
        assert result.finish_reason in ("stop", "length")
        assert 0 < result.completion_tokens <= 16 and result.prompt_tokens > 0 and result.latency_ms > 0
    assert not results[6].ok and "vLLM refused the prompt" in results[6].error
    assert backend.sampling_params["top_k"] == -1 and backend.sampling_params["repetition_penalty"] == 1.0
    again = {r.key: r for batch in backend.generate(requests[:2], stop=threading.Event()) for r in batch}
    assert again[0].text == results[0].text  # greedy with a fixed seed: the same answer


@pytest.mark.django_db
def test_a_job_with_the_in_process_backend_stores_its_responses(vllm_backend_class):
    from evalsite.studies.models import Response
    from models_serving import services
    from models_serving.models import Endpoint, GenerationJob
    from tests.factories import PromptFactory, StudyFactory, SystemFactory

    study = StudyFactory()
    system = SystemFactory(study=study, name="small")
    Endpoint.objects.create(system=system, backend=Endpoint.Backend.VLLM, model=MODEL, concurrency=8,
                            params={"temperature": 0.7, "max_tokens": 24, "seed": 1})
    for i in range(10):
        PromptFactory(study=study, external_id=f"g{i}", text=f"Give one fact about the number {i}.")
    job = services.generation_job_run_inline(job=services.generation_job_start(system=system, enqueue=False))
    assert (job.status, job.succeeded, job.failed) == (GenerationJob.Status.DONE, 10, 0)
    response = Response.objects.filter(system=system).first()
    assert response.model_name == MODEL and response.seed == 1 and response.meta["endpoint"] == "in process"
    assert services.queue_for(job) == "generation_gpu"
