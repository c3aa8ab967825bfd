"""The OpenAI-compatible HTTP backend: `vllm serve`, OpenAI's API, or any server speaking the same protocol.

vLLM batches only the requests in flight, so the backend keeps up to `concurrency` of them open at once
(an asyncio semaphore around each HTTP call), on an event loop in a thread of its own; the caller's thread
receives results through a queue and writes them to the database (Django's ORM stays out of the event loop).

Retries: connection errors, dropped connections, timeouts, 408, 429 and 5xx are retried with exponential
backoff and jitter (honouring Retry-After), releasing the in-flight slot while waiting. 400, 413 and 422
fail only that prompt, with the server's message. 401, 403, 404 and other client errors mean the endpoint
is misconfigured: the whole job stops with a message saying what to fix.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from models_serving.backends import (
    VLLM_NEUTRAL,
    Backend,
    EndpointFatal,
    EndpointUnavailable,
    GenerationRequest,
    GenerationResult,
    sampling_params_effective,
)

ITEM_ERROR_STATUSES = frozenset({400, 413, 422})
TRANSIENT_STATUSES = frozenset({408, 429})
MAX_ERROR_CHARS = 2000
_DONE = object()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: before retry n, wait between d/2 and d, d = min(cap, base * 2**(n-1)).

    The jitter spreads the retries of many requests that failed together (a server restart), so they do not
    come back as one wave. A server's Retry-After (seconds) is honoured up to `retry_after_cap`.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 20.0
    retry_after_cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap) + random.uniform(0, self.base)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class _Transient(Exception):
    def __init__(self, description: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(description)
        self.status = status
        self.retry_after = retry_after


class _ItemRefused(Exception):
    def __init__(self, message: str, status: int | None):
        super().__init__(message)
        self.status = status


def error_message(status: int, reason: str, body: bytes) -> str:
    """The server's own words from an error body.

    vLLM answers {"error": {"message", "type", "param", "code"}} (older versions: {"object": "error",
    "message", ...}); OpenAI the nested form; vLLM's API-key check {"error": "Unauthorized"}.
    """
    text = body.decode("utf-8", "replace").strip()
    message = text
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict) and error.get("message"):
                message = str(error["message"])
            elif isinstance(error, str) and error:
                message = error
            elif data.get("message"):
                message = str(data["message"])
            elif data.get("detail"):  # FastAPI-style servers
                message = json.dumps(data["detail"]) if not isinstance(data["detail"], str) else data["detail"]
    message = message or "(empty body)"
    return f"HTTP {status} {reason}: {message}"[:MAX_ERROR_CHARS]


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; rare for these servers, and our own backoff is fine


@dataclass
class EndpointCheck:
    """What GET {base_url}/models said: is the model served? Shown by the endpoint page's check button."""

    ok: bool
    message: str
    served_models: list[str]
    is_vllm: bool = False


class OpenAIHTTPBackend(Backend):
    def __init__(self, *, base_url: str, model: str, api_key: str | None, concurrency: int, params: dict,
                 retry: RetryPolicy | None = None, request_timeout: float = 600.0, connect_timeout: float = 10.0,
                 tick: float = 0.25, preflight: bool = True):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = max(1, int(concurrency))
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.tick = tick
        self.preflight = preflight
        self._params = sampling_params_effective(params)
        self.is_vllm = False
        self.sampling_params = dict(self._params)

    # --- the caller's side ------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], *,
                 stop: threading.Event) -> Iterator[list[GenerationResult]]:
        requests = list(requests)
        if not requests:
            return
        results: queue.Queue = queue.Queue()
        failure: list[BaseException] = []
        halt = threading.Event()  # set when the caller stops listening (cancel, deadline, generator closed)

        def run_loop() -> None:
            try:
                asyncio.run(self._run(requests, results, stop, halt))
            except BaseException as exc:  # handed to the caller's thread, which raises it
                failure.append(exc)
            finally:
                results.put(_DONE)

        thread = threading.Thread(target=run_loop, name="generation-http", daemon=True)
        thread.start()
        try:
            finished = False
            while not finished:
                batch: list[GenerationResult] = []
                try:
                    item = results.get(timeout=self.tick)
                    while True:
                        if item is _DONE:
                            finished = True
                            break
                        batch.append(item)
                        item = results.get_nowait()
                except queue.Empty:
                    pass
                yield batch
            if failure:
                raise failure[0]
        finally:
            halt.set()
            thread.join(timeout=60)

    # --- the event loop's side --------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, sock_connect=self.connect_timeout)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers())

    def payload(self, messages: list[dict]) -> dict[str, Any]:
        """The request body: every sampling parameter stated, none left to the server."""
        params = self._params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "n": 1,
            "stream": False,
            "temperature": params["temperature"],
            "top_p": params["top_p"],
            "max_tokens": params["max_tokens"],
            "seed": params["seed"],
            # OpenAI refuses an empty list; null is its explicit "no stop sequences".
            "stop": list(params["stop"]) or None,
            "presence_penalty": params["presence_penalty"],
            "frequency_penalty": params["frequency_penalty"],
        }
        if self.is_vllm:
            body.update(VLLM_NEUTRAL)
        return body

    async def _run(self, requests: list[GenerationRequest], results: queue.Queue, stop: threading.Event,
                   halt: threading.Event) -> None:
        state = _RunState()
        async with self._session() as session:
            if self.preflight:
                await self._preflight(session, stop, halt)
            semaphore = asyncio.Semaphore(self.concurrency)
            tasks = [asyncio.create_task(self._one(session, semaphore, request, results, state))
                     for request in requests]
            watcher = asyncio.create_task(self._watch(tasks, stop, halt, state))
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        if state.error is not None:
            raise state.error

    async def _watch(self, tasks: list[asyncio.Task], stop: threading.Event, halt: threading.Event,
                     state: _RunState) -> None:
        """Cancel everything in flight as soon as the caller stops or one request decided the run is over."""
        while not (stop.is_set() or halt.is_set() or state.error is not None):
            if all(task.done() for task in tasks):
                return
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()

    async def _preflight(self, session: aiohttp.ClientSession, stop: threading.Event,
                         halt: threading.Event) -> None:
        """GET /models once: is the model served, and is this vLLM (which takes top_k, min_p, ...)?"""
        for attempt in range(1, self.retry.attempts + 1):
            if stop.is_set() or halt.is_set():
                return
            try:
                check = await _check(session, self.base_url, self.model)
            except _Transient as exc:
                if attempt == self.retry.attempts:
                    raise EndpointUnavailable(self._unavailable(str(exc), attempt)) from None
                await asyncio.sleep(self.retry.delay(attempt, exc.retry_after))
                continue
            if not check.ok:
                raise EndpointFatal(check.message)
            self.is_vllm = check.is_vllm
            if self.is_vllm:
                self.sampling_params = {**self._params, **VLLM_NEUTRAL}
            return

    def _unavailable(self, description: str, attempts: int) -> str:
        return (f"{self.base_url} did not answer usably after {attempts} attempts: {description}. Check that the "
                "server is running and reachable from the workers; generation resumes where it stopped.")

    async def _one(self, session: aiohttp.ClientSession, semaphore: asyncio.Semaphore,
                   request: GenerationRequest, results: queue.Queue, state: _RunState) -> None:
        body = json.dumps(self.payload(request.messages))
        url = f"{self.base_url}/chat/completions"
        first_started = time.monotonic()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                async with semaphore:
                    started = time.monotonic()
                    result = await self._post(session, url, body, request.key)
                result.latency_ms = int((time.monotonic() - started) * 1000)
                result.attempts = attempt
                state.last_success = time.monotonic()
                results.put(result)
                return
            except _ItemRefused as exc:
                results.put(GenerationResult(key=request.key, error=str(exc), status_code=exc.status,
                                             attempts=attempt))
                return
            except EndpointFatal as exc:
                state.fail(exc)
                return
            except _Transient as exc:
                if attempt < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt, exc.retry_after))
                    continue
                # A prompt that keeps crashing the server while other prompts succeed is that prompt's
                # problem; anything else (refused connections, rate limits, timeouts) is the endpoint's.
                if exc.status is not None and exc.status >= 500 and state.last_success > first_started:
                    results.put(GenerationResult(key=request.key, status_code=exc.status, attempts=attempt,
                                                 error=f"{exc} (gave up after {attempt} attempts)"))
                else:
                    state.fail(EndpointUnavailable(self._unavailable(str(exc), attempt)))
                return

    async def _post(self, session: aiohttp.ClientSession, url: str, body: str, key: int) -> GenerationResult:
        try:
            async with session.post(url, data=body) as response:
                raw = await response.read()
                status = response.status
                if status == 200:
                    return self._parse(key, raw)
                message = error_message(status, response.reason or "", raw)
                if status in ITEM_ERROR_STATUSES:
                    raise _ItemRefused(message, status)
                if status in TRANSIENT_STATUSES or status >= 500:
                    raise _Transient(message, status, _retry_after(response.headers))
                raise EndpointFatal(_fatal_message(status, message, self.base_url, self.model))
        except aiohttp.ClientConnectorError as exc:
            raise _Transient(f"cannot connect ({exc.os_error or exc})") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
            raise _Transient(f"connection dropped ({type(exc).__name__}: {exc})") from None
        except TimeoutError:
            raise _Transient(f"no answer within {self.request_timeout:g} s") from None

    def _parse(self, key: int, raw: bytes) -> GenerationResult:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            snippet = raw[:300].decode("utf-8", "replace")
            raise _ItemRefused(f"HTTP 200 with an unexpected body (no choices[0].message): {snippet}", 200) from None
        usage = data.get("usage") or {}
        return GenerationResult(
            key=key, text=text, finish_reason=str(choice.get("finish_reason") or ""),
            prompt_tokens=_count(usage.get("prompt_tokens")), completion_tokens=_count(usage.get("completion_tokens")),
            meta={k: v for k, v in (("completion_id", data.get("id")), ("served_model", data.get("model"))) if v},
        )


class _RunState:
    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.last_success = 0.0

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _fatal_message(status: int, message: str, base_url: str, model: str) -> str:
    if status in (401, 403):
        return (f"{base_url} refused the API key ({message}). Set the endpoint's api_key_env variable on the "
                "workers to the server's key.")
    if status == 404:
        return (f"{base_url} answered 404 ({message}). Check the base URL (it usually ends in /v1) and the model "
                f"name {model!r}; the endpoint page's Check button lists the models the server serves.")
    return f"{base_url} answered {message}; this is not a problem retrying can solve."


async def _check(session: aiohttp.ClientSession, base_url: str, model: str) -> EndpointCheck:
    url = f"{base_url}/models"
    try:
        async with session.get(url) as response:
            raw = await response.read()
            status = response.status
            reason = response.reason or ""
            if status in (408, 429) or status >= 500:
                raise _Transient(error_message(status, reason, raw), status, _retry_after(response.headers))
    except aiohttp.ClientConnectorError as exc:
        raise _Transient(f"cannot connect ({exc.os_error or exc})") from None
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
        raise _Transient(f"connection dropped ({type(exc).__name__}: {exc})") from None
    except TimeoutError:
        raise _Transient("no answer in time") from None
    if status == 404:
        # Not every OpenAI-compatible server lists its models; the chat requests will tell.
        return EndpointCheck(ok=True, served_models=[],
                             message=f"{url} does not exist (404), so the served models are unknown.")
    if status != 200:
        return EndpointCheck(ok=False, served_models=[],
                             message=_fatal_message(status, error_message(status, reason, raw), base_url, model))
    try:
        entries = json.loads(raw)["data"]
        served = [str(entry["id"]) for entry in entries]
        is_vllm = any(entry.get("owned_by") == "vllm" for entry in entries)
    except (ValueError, KeyError, TypeError):
        return EndpointCheck(ok=False, served_models=[],
                             message=f"{url} answered 200 but not with an OpenAI model list: {raw[:200]!r}")
    if model not in served:
        listed = ", ".join(served[:20]) or "none"
        return EndpointCheck(ok=False, served_models=served, is_vllm=is_vllm,
                             message=f"{base_url} does not serve the model {model!r}; it serves: {listed}. "
                                     "Correct the model name (vLLM: the --served-model-name).")
    kind = "vLLM" if is_vllm else "the server"
    return EndpointCheck(ok=True, served_models=served, is_vllm=is_vllm,
                         message=f"{kind} at {base_url} serves {model!r}.")


def check_endpoint(*, base_url: str, model: str, api_key: str | None, timeout: float = 10.0) -> EndpointCheck:
    """One GET {base_url}/models, without retries: for a researcher's Check button."""

    async def run() -> EndpointCheck:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), headers=headers) as session:
            return await _check(session, base_url.rstrip("/"), model)

    try:
        return asyncio.run(run())
    except _Transient as exc:
        return EndpointCheck(ok=False, served_models=[], message=f"{base_url}: {exc}.")
