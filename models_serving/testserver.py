"""An OpenAI-compatible server for tests, benchmarks and trying the generation pages without a GPU.

It answers like vLLM's `vllm serve` in everything the platform relies on: POST /v1/chat/completions with
choices[0].message.content, finish_reason ("stop", or "length" when max_tokens cut the answer) and usage;
GET /v1/models with owned_by "vllm"; 400 for a prompt longer than the model's context, 404 for a model it
does not serve and 401 for a wrong API key, each with vLLM's error body.

It can be told to misbehave, per prompt (matched on the last user message) or for every request: delay,
answer 429 / 503 / 400 / 500, or drop the connection without answering. It counts requests and records the
largest number in flight at once.

    with OpenAITestServer(model="demo", delay=0.2) as server:      # binds 127.0.0.1 on a free port
        server.on("flaky", ["429", "503", "drop", "ok"])           # one step per request; the last repeats
        ... server.base_url ... server.max_in_flight ...

    python -m models_serving.testserver --port 8001 --model demo --delay 0.2
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

STEP_STATUSES = {
    "400": (400, "BadRequestError"),
    "404": (404, "NotFoundError"),
    "408": (408, "RequestTimeout"),
    "429": (429, "RateLimitError"),
    "500": (500, "InternalServerError"),
    "502": (502, "BadGateway"),
    "503": (503, "ServiceUnavailable"),
}


@dataclass
class _Rule:
    steps: list[str]
    seen: Counter = field(default_factory=Counter)  # per prompt: each matching prompt has its own sequence

    def next_step(self, content: str) -> str:
        step = self.steps[min(self.seen[content], len(self.steps) - 1)]
        self.seen[content] += 1
        return step


@dataclass
class ServerStats:
    requests: int = 0
    completions: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_content: Counter = field(default_factory=Counter)
    bodies: list[dict] = field(default_factory=list)


def _tokens(text: str) -> int:
    # A whitespace tokenizer: good enough for usage counts and the context-length check.
    return len(text.split())


class OpenAITestServer:
    def __init__(self, *, model: str = "test-model", delay: float = 0.0, api_key: str | None = None,
                 max_model_len: int = 4096, legacy_errors: bool = False, owned_by: str = "vllm",
                 host: str = "127.0.0.1", port: int = 0, keep_bodies: bool = True):
        self.model = model
        self.delay = delay
        self.api_key = api_key
        self.max_model_len = max_model_len
        self.legacy_errors = legacy_errors
        self.owned_by = owned_by
        self.host = host
        self.port = port
        self.keep_bodies = keep_bodies
        self.default_steps: list[str] = ["ok"]
        self._default_seen = 0
        self.stats = ServerStats()
        self._rules: dict[str, _Rule] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- configuration (from the test's thread) -----------------------------------------------------------

    def on(self, content: str, steps: list[str]) -> None:
        """Requests whose last user message contains `content` go through `steps`, one per request of each
        such prompt; the last step repeats. Steps: "ok", "drop", or a status ("400", "429", "500", "503", ...)."""
        with self._lock:
            self._rules[content] = _Rule(list(steps))

    def always(self, steps: list[str]) -> None:
        """Steps for requests no rule matches (default: always "ok")."""
        with self._lock:
            self.default_steps = list(steps)
            self._default_seen = 0

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self.default_steps = ["ok"]
            self._default_seen = 0
            self.stats = ServerStats()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def max_in_flight(self) -> int:
        return self.stats.max_in_flight

    def requests_for(self, content: str) -> int:
        return self.stats.by_content[content]

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> OpenAITestServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
                loop.run_until_complete(self._runner.setup())
                loop.run_until_complete(web.SockSite(self._runner, sock, backlog=1024).start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="openai-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the HTTP side -------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    def _error(self, status: int, kind: str, message: str, param: str | None = None) -> web.Response:
        info = {"message": message, "type": kind, "param": param, "code": status}
        body = {"object": "error", **info} if self.legacy_errors else {"error": info}
        return web.json_response(body, status=status)

    def _authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "Unauthorized"}, status=401)  # vLLM's API-key middleware
        created = int(time.time())
        return web.json_response({"object": "list", "data": [{
            "id": self.model, "object": "model", "created": created, "owned_by": self.owned_by,
            "root": self.model, "parent": None, "max_model_len": self.max_model_len, "permission": [],
        }]})

    def _step_for(self, content: str) -> tuple[str, str | None]:
        with self._lock:
            for key, rule in self._rules.items():
                if key in content:
                    return rule.next_step(content), key
            step = self.default_steps[min(self._default_seen, len(self.default_steps) - 1)]
            self._default_seen += 1
            return step, None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._answer(request, stats)
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: web.Request, stats: ServerStats) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        try:
            body = await request.json()
            messages = body["messages"]
            last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        except (ValueError, KeyError, TypeError, StopIteration):
            return self._error(400, "BadRequestError", "messages must be a list with at least one user message",
                               "messages")
        if self.keep_bodies:
            stats.bodies.append(body)
        step, key = self._step_for(last_user)
        if key is not None:
            stats.by_content[key] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if step == "drop":
            # Close the connection without a byte of answer, like a server process that died mid-request.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if step in STEP_STATUSES:
            status, kind = STEP_STATUSES[status_key := step]
            message = {
                "400": f"This model's maximum context length is {self.max_model_len} tokens. However, you requested more tokens "
                       "in the messages. Please reduce the length of the messages.",
                "404": f"The model `{body.get('model')}` does not exist.",
                "429": "Too many requests: the server is over capacity, retry later.",
            }.get(status_key, f"{kind}: the server could not process the request.")
            return self._error(status, kind, message)
        if body.get("model") != self.model:
            return self._error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.", "model")
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in messages)
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            max_tokens = self.max_model_len - prompt_tokens
        if prompt_tokens + max_tokens > self.max_model_len:
            return self._error(400, "BadRequestError",
                               f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                               f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                               f"{max_tokens} in the completion). Please reduce the length of the messages or "
                               "completion.", "input_tokens")
        words = f"Answer to: {last_user}".split()
        finish_reason = "stop"
        if len(words) > max_tokens:
            words, finish_reason = words[:max_tokens], "length"
        stats.completions += 1
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(words), "reasoning_content": None,
                            "tool_calls": []},
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
            }],
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + len(words),
                      "completion_tokens": len(words), "prompt_tokens_details": None},
            "prompt_logprobs": None,
        })


def main() -> None:  # pragma: no cover - a developer's tool
    parser = argparse.ArgumentParser(description="An OpenAI-compatible test server (answers like vLLM).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = OpenAITestServer(model=args.model, delay=args.delay, api_key=args.api_key, host=args.host,
                              port=args.port, keep_bodies=False).start()
    print(f"Serving {args.model!r} at {server.base_url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
