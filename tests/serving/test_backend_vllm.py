"""The in-process vLLM backend's own logic, with a stand-in `vllm` module (no GPU here; the real model runs in
test_vllm_gpu.py where there is one): parameters, batches, a too-long prompt, stopping, vllm missing."""
from __future__ import annotations

import sys
import threading
import types
from dataclasses import dataclass

import pytest

from models_serving.backends import EndpointFatal, GenerationRequest, vllm_inprocess
from models_serving.backends.vllm_inprocess import VLLMInProcessBackend


@dataclass
class _Completion:
    text: str
    finish_reason: str
    token_ids: list


@dataclass
class _Output:
    request_id: str
    prompt_token_ids: list
    outputs: list


class FakeLLM:
    """Answers like vllm.LLM.chat; refuses a whole batch when one conversation is longer than 50 words."""

    instances: list = []

    def __init__(self, model: str):
        self.model = model
        self.batches: list[int] = []
        FakeLLM.instances.append(self)

    def chat(self, conversations, sampling_params, use_tqdm=True):
        assert use_tqdm is False
        self.batches.append(len(conversations))
        outputs = []
        for i, messages in enumerate(conversations):
            words = sum(len(m["content"].split()) for m in messages)
            if words > 50:
                raise ValueError(f"The decoder prompt (length {words}) is longer than the maximum model length of 50.")
            outputs.append(_Output(request_id=str(i), prompt_token_ids=list(range(words)),
                                   outputs=[_Completion(f"reply to {messages[-1]['content']}", "stop", [1, 2, 3])]))
        return outputs


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(vllm_inprocess, "_loaded", {})
    FakeLLM.instances = []
    return module


def ask(key: int, text: str) -> GenerationRequest:
    return GenerationRequest(key=key, messages=[{"role": "user", "content": text}])


def collect(backend, requests, stop=None) -> dict:
    return {r.key: r for batch in backend.generate(requests, stop=stop or threading.Event()) for r in batch}


def test_every_sampling_parameter_is_given_to_vllm(fake_vllm):
    backend = VLLMInProcessBackend(model="m", batch_size=4, params={"temperature": 0.3, "stop": "END"})
    assert backend._vllm_sampling_params().kwargs == {
        "n": 1, "temperature": 0.3, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "max_tokens": 1024, "seed": 0,
        "stop": ["END"], "presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalty": 1.0,
    }


def test_prompts_go_in_batches_of_the_concurrency_and_come_back_with_usage(fake_vllm):
    backend = VLLMInProcessBackend(model="m", batch_size=4, params={})
    results = collect(backend, [ask(i, f"q{i}") for i in range(10)])
    assert FakeLLM.instances[0].batches == [4, 4, 2]
    assert results[7].text == "reply to q7" and results[7].finish_reason == "stop"
    assert (results[7].prompt_tokens, results[7].completion_tokens) == (1, 3) and results[7].ok


def test_a_prompt_too_long_fails_alone_and_the_rest_of_its_batch_is_answered(fake_vllm):
    backend = VLLMInProcessBackend(model="m", batch_size=4, params={})
    results = collect(backend, [ask(0, "short"), ask(1, "word " * 60), ask(2, "short too")])
    assert results[0].ok and results[2].ok
    assert not results[1].ok and "vLLM refused the prompt: The decoder prompt (length 60)" in results[1].error
    alone = collect(backend, [ask(3, "word " * 60)])  # a batch of one
    assert not alone[3].ok and "longer than the maximum model length" in alone[3].error


def test_the_model_stays_loaded_between_chunks(fake_vllm):
    backend = VLLMInProcessBackend(model="m", batch_size=2, params={})
    collect(backend, [ask(0, "a")])
    collect(VLLMInProcessBackend(model="m", batch_size=2, params={}), [ask(1, "b")])
    assert len(FakeLLM.instances) == 1


def test_stop_is_honoured_between_batches(fake_vllm):
    stop = threading.Event()
    backend = VLLMInProcessBackend(model="m", batch_size=2, params={})
    stream = backend.generate([ask(i, f"q{i}") for i in range(6)], stop=stop)
    first = next(stream)
    stop.set()
    assert len(first) == 2 and list(stream) == []


def test_without_vllm_the_job_fails_saying_where_to_run_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    monkeypatch.setattr(vllm_inprocess, "_loaded", {})
    backend = VLLMInProcessBackend(model="m", batch_size=2, params={})
    with pytest.raises(EndpointFatal, match="vllm is not installed on this worker"):
        collect(backend, [ask(0, "a")])
