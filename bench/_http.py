"""A minimal HTTP/1.1 client for the load generators: one connection per simulated rater, reused while the
server keeps it open (gunicorn's sync workers close after each response; then it reconnects).

Why not aiohttp: the load generator shares the two cores with the server it measures, and aiohttp spent
about a quarter of a core on 100 raters; this spends a fraction of that, so more of the machine measures
the server. It speaks only what the rater pages need: GET and form POST, Content-Length or chunked bodies,
no redirects followed (the caller reads Location).
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit


class HttpError(Exception):
    pass


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


class Connection:
    """One keep-alive connection to http://host:port; not safe to share between concurrent tasks."""

    def __init__(self, base: str, timeout: float = 30.0):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, params: dict | None = None, headers: dict | None = None) -> Response:
        return await self.request("GET", path + ("?" + urlencode(params) if params else ""), headers=headers)

    async def post(self, path: str, form: dict, headers: dict | None = None) -> Response:
        body = urlencode(form).encode()
        return await self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                       **(headers or {})})

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Response:
        return await asyncio.wait_for(self._request(method, path, body, headers or {}), self.timeout)

    async def _request(self, method: str, path: str, body: bytes, headers: dict) -> Response:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            try:
                self._writer.write(data)
                return await self._read_response()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if fresh or attempt == 2:  # a reused connection may have been closed by the server: retry once
                    raise
        raise AssertionError("unreachable")

    async def _read_response(self) -> Response:
        reader = self._reader
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(f"bad status line {lines[0]!r}") from None
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = await reader.read()  # the server closes to end the body
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
