"""A local fake of OpenAI's chat completions API (streamed), for tests and benchmarks.

The real openai SDK talks to it unchanged (``base_url=server.url + "/v1"``).

In tests::

    with FakeOpenAIServer() as server:
        server.push(Reply(status=429, retry_after="1"))   # next call answers 429
        server.push(Reply(chunks=["Hel", "lo"]))          # the call after streams "Hello"
        ...                                               # then every call gets server.default
        assert server.requests[0].body["stream_options"] == {"include_usage": True}

A :class:`Reply` decides one answer: ``chunks`` (text deltas, ``delay`` seconds before each),
``finish_reason``, ``usage`` (send the usage chunk when the request asked for it),
``status`` (an HTTP error with an OpenAI-style body; ``retry_after``/``retry_after_ms``
headers), ``cut_after=N`` (end the body cleanly after N deltas: no finish, no usage, no
``[DONE]``), ``abort_after=N`` (drop the connection after N deltas), ``error_after=N`` (an
in-stream ``{"error": ...}`` chunk, as vLLM sends), ``refusal`` (a refusal delta), ``hang``
(seconds before answering; stopping the server ends it).

Run as a process (benchmarks): ``python -m tests.fakes.openai_wire --port 8124 --chunks 20
--delay 0.05`` answers every request with the default reply, keeping no request log.
"""

import argparse
import asyncio
import itertools
import json
import signal
import threading
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from tests.fakes.llm_server import LAST_CHUNK, STREAM_HEADERS, chunk_frame, default_chunks

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}
ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


@dataclass
class Reply:
    chunks: list[str] = field(default_factory=default_chunks)
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: bool = True
    input_tokens: int = 12
    output_tokens: int | None = None  # default: one token per chunk
    status: int | None = None
    error_message: str | None = None
    retry_after: str | None = None
    retry_after_ms: int | None = None
    cut_after: int | None = None
    abort_after: int | None = None
    error_after: int | None = None
    error_code: int = 500
    refusal: str | None = None
    hang: float = 0.0

    def total_output_tokens(self):
        return len(self.chunks) if self.output_tokens is None else self.output_tokens


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict  # lower-cased names
    body: object


def completion_chunk(completion_id, model, delta, finish_reason=None):
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"id": completion_id, "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [choice]}


def usage_chunk(completion_id, model, input_tokens, output_tokens):
    usage = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens}
    usage["total_tokens"] = input_tokens + output_tokens
    payload = {"id": completion_id, "object": "chat.completion.chunk", "created": 1, "model": model, "choices": []}
    return {**payload, "usage": usage}


def data_frame(payload):
    """One SSE event (``data:`` only, as OpenAI sends) as one HTTP chunk."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return chunk_frame(f"data: {text}\n\n")


def error_body(status, message):
    error_type = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "param": None, "code": ERROR_CODES.get(status)}}


class _Dropped(Exception):
    """Drop the connection now."""


class FakeOpenAIServer:
    """An asyncio server on its own thread (tests) or in the foreground (``serve``)."""

    def __init__(self, host="127.0.0.1", port=0, default=None, record=True):
        self.host = host
        self.port = port
        self.default = default or Reply()
        self.record = record
        self.requests: list[RecordedRequest] = []
        self._replies = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tasks = set()
        self._loop = self._stopping = self._thread = None
        self.url = None

    # -- scripting ------------------------------------------------------------------------
    def push(self, *replies, **fields):
        if fields:
            replies = (*replies, Reply(**fields))
        with self._lock:
            self._replies.extend(replies)
        return self

    @property
    def calls(self):
        with self._lock:
            return len(self.requests)

    def _next(self, record):
        with self._lock:
            if self.record:
                self.requests.append(record)
            return self._replies.popleft() if self._replies else self.default

    # -- HTTP -----------------------------------------------------------------------------
    @staticmethod
    def _head(status, headers):
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n{lines}\r\n".encode("latin-1")

    def _json(self, status, payload, headers=()):
        data = json.dumps(payload).encode()
        fields = (("Content-Type", "application/json"), ("Content-Length", len(data)), *headers)
        return self._head(status, fields) + data

    async def _connection(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while await self._request(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, _Dropped):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _request(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split()
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        raw = await reader.readexactly(length) if length else b""
        path = urlsplit(target).path
        if method == "POST" and path.endswith("/chat/completions"):
            body = json.loads(raw) if raw else {}
            await self._answer(writer, self._next(RecordedRequest(method, path, headers, body)), body)
        else:
            writer.write(self._json(404, error_body(404, f"No route for {path}")))
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    async def _answer(self, writer, reply, body):
        if reply.hang:
            await asyncio.sleep(reply.hang)
        if reply.status and reply.status != 200:
            headers = []
            if reply.retry_after is not None:
                headers.append(("retry-after", reply.retry_after))
            if reply.retry_after_ms is not None:
                headers.append(("retry-after-ms", reply.retry_after_ms))
            message = reply.error_message or f"Fake error (HTTP {reply.status})"
            writer.write(self._json(reply.status, error_body(reply.status, message), headers))
            return
        await self._stream(writer, reply, body)

    async def _stream(self, writer, reply, body):
        completion_id, model = f"chatcmpl-fake{next(self._ids)}", body.get("model", "gpt-fake")
        opening = completion_chunk(completion_id, model, {"role": "assistant", "content": ""})
        writer.write(self._head(200, STREAM_HEADERS) + data_frame(opening))
        for index, text in enumerate(reply.chunks):
            if index == reply.cut_after:
                writer.write(LAST_CHUNK)
                return
            if index == reply.abort_after:
                writer.transport.abort()
                raise _Dropped
            if index == reply.error_after:
                error = {"error": {"message": "Fake mid-stream failure", "code": reply.error_code}}
                writer.write(data_frame(error) + LAST_CHUNK)
                return
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if writer.transport.is_closing():
                raise _Dropped
            writer.write(data_frame(completion_chunk(completion_id, model, {"content": text})))
        if reply.refusal:
            writer.write(data_frame(completion_chunk(completion_id, model, {"refusal": reply.refusal})))
        writer.write(data_frame(completion_chunk(completion_id, model, {}, reply.finish_reason)))
        if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
            usage = usage_chunk(completion_id, model, reply.input_tokens, reply.total_output_tokens())
            writer.write(data_frame(usage))
        writer.write(data_frame("[DONE]") + LAST_CHUNK)

    # -- lifecycle ------------------------------------------------------------------------
    async def serve(self, stopping=None, ready=None):
        """Serve until ``stopping`` is set (without one: until SIGTERM or SIGINT)."""
        loop = asyncio.get_running_loop()
        if stopping is None:
            stopping = asyncio.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopping.set)
        server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        if ready is not None:
            ready.set()
        try:
            await stopping.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    def start(self):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            self._stopping = asyncio.Event()
            self._loop.run_until_complete(self.serve(self._stopping, ready))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def stop(self):
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake OpenAI chat completions server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8124)
    parser.add_argument("--chunks", type=int, default=20, help="text chunks per streamed answer")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between chunks")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(args.host, args.port, Reply(chunks=default_chunks(args.chunks), delay=args.delay), False)
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
