"""The OpenAI-compatible HTTP backend against the test server: what it sends, how it bounds and retries."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from models_serving.backends import (
    DEFAULT_SAMPLING,
    VLLM_NEUTRAL,
    EndpointFatal,
    EndpointUnavailable,
    GenerationRequest,
)
from models_serving.backends.http import OpenAIHTTPBackend, RetryPolicy, check_endpoint, error_message
from models_serving.testserver import OpenAITestServer
from tests.serving.conftest import MODEL

FAST_RETRY = RetryPolicy(attempts=5, base=0.02, cap=0.1)


def backend(server, **overrides) -> OpenAIHTTPBackend:
    options = {"base_url": server.base_url, "model": MODEL, "api_key": None, "concurrency": 4, "params": {},
               "retry": FAST_RETRY, "tick": 0.05}
    options.update(overrides)
    return OpenAIHTTPBackend(**options)


def ask(text: str, key: int = 0) -> GenerationRequest:
    return GenerationRequest(key=key, messages=[{"role": "user", "content": text}])


def run(b: OpenAIHTTPBackend, requests, stop: threading.Event | None = None) -> dict:
    results = {}
    for batch in b.generate(requests, stop=stop or threading.Event()):
        for result in batch:
            assert result.key not in results, "a request got two results"
            results[result.key] = result
    return results


def test_every_sampling_parameter_is_sent_explicitly_with_our_defaults(openai_server):
    run(backend(openai_server, params={"temperature": 0.7, "max_tokens": 256}), [ask("hello")])
    (body,) = openai_server.stats.bodies
    expected = {**DEFAULT_SAMPLING, "temperature": 0.7, "max_tokens": 256, "stop": None, **VLLM_NEUTRAL}
    assert {name: body[name] for name in expected} == expected
    assert body["model"] == MODEL and body["n"] == 1 and body["stream"] is False


def test_vllm_only_parameters_are_not_sent_to_a_server_that_is_not_vllm():
    with OpenAITestServer(model=MODEL, owned_by="openai") as server:
        b = backend(server, params={"stop": ["\n\n"], "seed": 7})
        run(b, [ask("hello")])
    (body,) = server.stats.bodies
    assert not set(VLLM_NEUTRAL) & set(body)
    assert body["stop"] == ["\n\n"] and body["seed"] == 7
    assert "top_k" not in b.sampling_params


def test_the_recorded_parameters_are_the_ones_sent(openai_server):
    b = backend(openai_server, params={"top_p": 0.9})
    run(b, [ask("hello")])
    (body,) = openai_server.stats.bodies
    sent = {name: body[name] for name in b.sampling_params}
    assert sent == {**b.sampling_params, "stop": None}


def test_a_multi_turn_prompt_is_sent_as_its_messages(openai_server):
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
             {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."}]
    results = run(backend(openai_server), [GenerationRequest(key=1, messages=turns)])
    assert openai_server.stats.bodies[0]["messages"] == turns
    assert results[1].text == "Answer to: Name a colour."


def test_results_carry_text_finish_reason_usage_and_latency(openai_server):
    openai_server.delay = 0.05
    results = run(backend(openai_server, params={"max_tokens": 3}), [ask("one two three four", key=9)])
    result = results[9]
    assert (result.text, result.finish_reason) == ("Answer to: one", "length")
    assert (result.prompt_tokens, result.completion_tokens) == (4, 3)
    assert result.latency_ms >= 50 and result.attempts == 1 and result.ok
    assert result.meta["completion_id"].startswith("chatcmpl-")


def test_requests_in_flight_never_exceed_the_concurrency_and_reach_it(openai_server):
    openai_server.delay = 0.1
    results = run(backend(openai_server, concurrency=8), [ask(f"q{i}", key=i) for i in range(40)])
    assert len(results) == 40
    assert openai_server.max_in_flight == 8


def test_429_503_and_a_dropped_connection_are_retried_until_the_answer_comes(openai_server):
    openai_server.on("flaky", ["429", "503", "drop", "ok"])
    results = run(backend(openai_server), [ask("flaky one", key=1), ask("steady", key=2)])
    assert results[1].ok and results[1].text == "Answer to: flaky one" and results[1].attempts == 4
    assert results[2].ok and results[2].attempts == 1
    assert openai_server.requests_for("flaky") == 4


def test_a_400_fails_only_its_prompt_with_the_servers_message(openai_server):
    long_prompt = "word " * 5000  # longer than the test server's 4096-token context
    results = run(backend(openai_server), [ask("fine", key=1), ask(long_prompt, key=2), ask("also fine", key=3)])
    assert results[1].ok and results[3].ok
    assert not results[2].ok and results[2].status_code == 400 and results[2].text is None
    assert "maximum context length is 4096 tokens" in results[2].error
    assert results[2].attempts == 1  # not retried: it would fail the same way


def test_the_legacy_vllm_error_body_is_understood_too():
    with OpenAITestServer(model=MODEL, legacy_errors=True) as server:
        server.on("bad", ["400"])
        results = run(backend(server), [ask("bad", key=1)])
    assert results[1].error.startswith("HTTP 400 Bad Request: This model's maximum context length")


@pytest.mark.parametrize(("status", "body", "expected"), [
    (400, b'{"error": {"message": "too long", "type": "BadRequestError", "param": null, "code": 400}}', "too long"),
    (400, b'{"object": "error", "message": "legacy", "type": "BadRequestError", "param": null, "code": 400}', "legacy"),
    (401, b'{"error": "Unauthorized"}', "Unauthorized"),
    (422, b'{"detail": [{"msg": "field required"}]}', '[{"msg": "field required"}]'),
    (502, b"<html>Bad gateway</html>", "<html>Bad gateway</html>"),
])
def test_error_messages_are_taken_from_every_known_body_shape(status, body, expected):
    assert error_message(status, "Reason", body) == f"HTTP {status} Reason: {expected}"


def test_a_wrong_api_key_stops_the_run_with_what_to_fix():
    with OpenAITestServer(model=MODEL, api_key="right-key") as server:
        with pytest.raises(EndpointFatal, match="refused the API key"):
            run(backend(server, api_key="wrong-key"), [ask("hello")])
        assert run(backend(server, api_key="right-key"), [ask("hello", key=1)])[1].ok
        assert server.stats.bodies[-1]["messages"][0]["content"] == "hello"


def test_a_model_the_server_does_not_serve_stops_the_run_before_any_prompt_is_sent(openai_server):
    with pytest.raises(EndpointFatal, match="does not serve the model 'other-model'; it serves: koala-13b"):
        run(backend(openai_server, model="other-model"), [ask("hello")])
    assert openai_server.stats.requests == 0


def test_a_server_that_is_down_makes_the_endpoint_unavailable_after_the_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    b = OpenAIHTTPBackend(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL, api_key=None, concurrency=2,
                          params={}, retry=FAST_RETRY, tick=0.05)
    with pytest.raises(EndpointUnavailable, match="did not answer usably after 5 attempts: cannot connect"):
        run(b, [ask("hello")])


def test_a_server_that_answers_503_to_everything_makes_the_endpoint_unavailable(openai_server):
    openai_server.always(["503"])
    with pytest.raises(EndpointUnavailable, match="HTTP 503"):
        run(backend(openai_server), [ask(f"q{i}", key=i) for i in range(3)])


def test_a_prompt_that_keeps_crashing_the_server_fails_alone_while_others_succeed(openai_server):
    openai_server.delay = 0.02
    openai_server.on("poison", ["500"])
    results = run(backend(openai_server, concurrency=2), [ask("poison", key=0)] + [ask(f"q{i}", key=i) for i in range(1, 8)])
    assert all(results[i].ok for i in range(1, 8))
    assert results[0].status_code == 500 and "gave up after 5 attempts" in results[0].error


def test_setting_stop_cancels_the_requests_in_flight_promptly(openai_server):
    openai_server.delay = 5
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    results = run(backend(openai_server, concurrency=4), [ask(f"q{i}", key=i) for i in range(8)], stop=stop)
    assert results == {}
    assert time.monotonic() - started < 2


def test_check_says_whether_the_model_is_served(openai_server):
    served = check_endpoint(base_url=openai_server.base_url, model=MODEL, api_key=None)
    assert served.ok and served.is_vllm and served.served_models == [MODEL]
    missing = check_endpoint(base_url=openai_server.base_url, model="gpt-4", api_key=None)
    assert not missing.ok and "does not serve the model 'gpt-4'; it serves: koala-13b" in missing.message


def test_check_reports_a_server_that_cannot_be_reached():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = check_endpoint(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL, api_key=None, timeout=2)
    assert not result.ok and "cannot connect" in result.message
