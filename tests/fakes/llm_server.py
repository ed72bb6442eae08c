"""A local fake of the Anthropic Messages API and the Gemini API, for tests and benchmarks.

Both real SDKs talk to it unchanged (point ``base_url`` at ``server.url``).

In tests::

    with FakeLLMServer() as server:
        server.push(Script(status=429, retry_after=7))   # next call answers 429
        server.push(Script(chunks=["Hel", "lo"]))         # the call after streams "Hello"
        ...                                               # then every call gets server.default
        assert server.calls == 2
        assert server.requests[0].headers["authorization"] == "Bearer test-key"

Each request consumes the next queued :class:`Script` (or uses ``server.default`` when the
queue is empty). A script decides the answer for whichever API the request was for:

* ``chunks``/``delay``: the text pieces streamed, and seconds slept before each one.
* ``stop_reason``: Anthropic ``stop_reason`` (default ``end_turn``; e.g. ``max_tokens``,
  ``refusal``) or Gemini ``finishReason`` (default ``STOP``; e.g. ``MAX_TOKENS``, ``SAFETY``).
* ``block_reason``: Gemini only, answer with ``promptFeedback.blockReason`` and no candidates.
* ``status``: answer with this HTTP error instead (400, 401, 403, 404, 413, 429, 500, 503,
  529...), with a provider-style JSON error body (``error_body`` replaces it entirely);
  ``retry_after`` / ``retry_after_ms`` set those headers; ``retry_delay`` (e.g. ``"7s"``) adds
  a google.rpc ``RetryInfo`` to the Gemini body.
* ``cut_after=N``: end the stream cleanly after N chunks, without the final events
  (no message_delta/message_stop; no finishReason/usageMetadata).
* ``abort_after=N``: drop the TCP connection abruptly after N chunks (mid chunked body).
* ``hang=S``: sleep S seconds before answering (after ``hang_after=N`` chunks if given:
  a mid-stream stall). Stopping the server wakes hung handlers.
* ``error_after=N``: after N chunks send an in-stream error (Anthropic ``event: error``
  frame of type ``error_type``; Gemini a ``data: {"error": ...}`` frame with ``status``
  defaulting to 503 for its code).

Run as a process (benchmarks): ``python -m tests.fakes.llm_server --port 8123 --chunks 20
--delay 0.05`` serves the default script forever.
"""

import argparse
import itertools
import json
import re
import signal
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
GEMINI_PATH = re.compile(
    r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)


def default_chunks(count=5):
    return [f"word{i} " for i in range(count)]


@dataclass
class Script:
    """How the fake answers one request. See the module docstring."""

    chunks: list[str] = field(default_factory=default_chunks)
    delay: float = 0.0
    stop_reason: str | None = None
    block_reason: str | None = None
    status: int | None = None
    error_message: str | None = None
    error_body: dict | None = None
    retry_after: float | str | None = None
    retry_after_ms: int | None = None
    retry_delay: str | None = None
    cut_after: int | None = None
    abort_after: int | None = None
    hang: float = 0.0
    hang_after: int | None = None
    error_after: int | None = None
    error_type: str = "overloaded_error"
    input_tokens: int = 12
    output_tokens: int | None = None  # default: one token per chunk
    headers: dict = field(default_factory=dict)

    def total_output_tokens(self):
        return len(self.chunks) if self.output_tokens is None else self.output_tokens


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    headers: dict  # lower-cased names
    body: object  # parsed JSON, or the raw text when it was not JSON

    @property
    def api(self):
        return "anthropic" if self.path.startswith("/v1/messages") else "gemini"


class _Abort(Exception):
    """Drop the connection now."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLM/1.0"
    fake: "FakeLLMServer"  # set on a per-server subclass

    def log_message(self, format, *args):
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send_json(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_stream(self, headers=None):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.flush()

    def _write(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Abort

    def _sleep(self, seconds):
        if seconds > 0:
            self.fake._stopping.wait(seconds)

    def _stream_pieces(self, script, emit_piece, emit_error):
        """Emit the scripted chunks, honouring delay/hang/cut/abort/error. True if completed."""
        for index, piece in enumerate(script.chunks):
            if script.hang_after is not None and index == script.hang_after:
                self._sleep(script.hang)
            if script.error_after is not None and index == script.error_after:
                emit_error()
                return False
            if script.abort_after is not None and index == script.abort_after:
                self._abort()
            if script.cut_after is not None and index == script.cut_after:
                return False
            self._sleep(script.delay)
            emit_piece(index, piece)
        count = len(script.chunks)
        if script.hang_after is not None and script.hang_after >= count:
            self._sleep(script.hang)
        if script.error_after is not None and script.error_after >= count:
            emit_error()
            return False
        if script.abort_after is not None and script.abort_after >= count:
            self._abort()
        return not (script.cut_after is not None and script.cut_after >= count)

    # -- dispatch -------------------------------------------------------------------------
    def do_POST(self):
        parts = urlsplit(self.path)
        body = self._read_body()
        record = RecordedRequest(
            method="POST",
            path=parts.path,
            query={k: v[0] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        match = GEMINI_PATH.match(parts.path)
        if parts.path != "/v1/messages" and not match:
            self._send_json(404, {"error": {"code": 404, "message": f"No route for {parts.path}"}})
            return
        script = self.fake._next(record)
        try:
            if script.hang_after is None:
                self._sleep(script.hang)
            if parts.path == "/v1/messages":
                self._anthropic(script, body if isinstance(body, dict) else {})
            else:
                stream = match["method"] == "streamGenerateContent"
                self._gemini(script, match["model"], stream)
        except _Abort:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        if self.path in ("/", "/healthz"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"code": 404, "message": "not found"}})

    def _error_headers(self, script):
        headers = dict(script.headers)
        if script.retry_after is not None:
            headers["retry-after"] = script.retry_after
        if script.retry_after_ms is not None:
            headers["retry-after-ms"] = script.retry_after_ms
        return headers

    # -- Anthropic ------------------------------------------------------------------------
    def _anthropic_error(self, status, script):
        error_type = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        message = script.error_message or f"Fake {error_type} (HTTP {status})"
        return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}

    def _anthropic(self, script, body):
        if script.status and script.status != 200:
            payload = script.error_body or self._anthropic_error(script.status, script)
            self._send_json(script.status, payload, {"request-id": "req_fake", **self._error_headers(script)})
            return
        model = body.get("model", "claude-fake")
        message_id = f"msg_fake_{self.fake._ids()}"
        stop_reason = script.stop_reason or "end_turn"
        usage_in = script.input_tokens
        if not body.get("stream"):
            if script.abort_after is not None:
                self._abort()
            text = "".join(script.chunks)
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": script.total_output_tokens()},
                },
                {"request-id": "req_fake", **script.headers},
            )
            return

        def event(name, data):
            self._write(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        self._start_stream({"request-id": "req_fake", **script.headers})
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": 1},
                },
            },
        )
        event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        event("ping", {"type": "ping"})

        def piece(index, text):
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )

        def error():
            message = script.error_message or f"Fake {script.error_type}"
            event("error", {"type": "error", "error": {"type": script.error_type, "message": message}})
            self._end_stream()

        if not self._stream_pieces(script, piece, error):
            if script.error_after is None:
                self._end_stream()
            return
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": script.total_output_tokens()},
            },
        )
        event("message_stop", {"type": "message_stop"})
        self._end_stream()

    # -- Gemini ---------------------------------------------------------------------------
    def _gemini_error(self, status, script):
        google_status = GOOGLE_STATUSES.get(status, "UNKNOWN")
        error = {
            "code": status,
            "message": script.error_message or f"Fake {google_status} (HTTP {status})",
            "status": google_status,
        }
        if script.retry_delay is not None:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/fake", "quotaId": "Fake"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": script.retry_delay},
            ]
        return {"error": error}

    def _gemini_usage(self, script):
        out = script.total_output_tokens()
        return {
            "promptTokenCount": script.input_tokens,
            "candidatesTokenCount": out,
            "totalTokenCount": script.input_tokens + out,
        }

    def _gemini(self, script, model, stream):
        if script.status and script.status != 200 and script.error_after is None:
            payload = script.error_body or self._gemini_error(script.status, script)
            self._send_json(script.status, payload, self._error_headers(script))
            return
        response_id = f"resp_fake_{self.fake._ids()}"
        finish = script.stop_reason or "STOP"

        def chunk(text, last):
            candidate = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
            payload = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
            if last:
                candidate["finishReason"] = finish
                payload["usageMetadata"] = self._gemini_usage(script)
            return payload

        if script.block_reason:
            payload = {
                "promptFeedback": {"blockReason": script.block_reason},
                "usageMetadata": {"promptTokenCount": script.input_tokens, "totalTokenCount": script.input_tokens},
                "modelVersion": model,
                "responseId": response_id,
            }
            if stream:
                self._start_stream(script.headers)
                self._write(f"data: {json.dumps(payload)}\n\n")
                self._end_stream()
            else:
                self._send_json(200, payload, script.headers)
            return
        if not stream:
            if script.abort_after is not None:
                self._abort()
            self._send_json(200, chunk("".join(script.chunks), True), script.headers)
            return

        self._start_stream(script.headers)
        pieces = script.chunks
        last_index = len(pieces) - 1
        complete_run = script.cut_after is None and script.abort_after is None and script.error_after is None

        def piece(index, text):
            self._write(f"data: {json.dumps(chunk(text, complete_run and index == last_index))}\n\n")

        def error():
            status = script.status or 503
            self._write(f"data: {json.dumps(script.error_body or self._gemini_error(status, script))}\n\n")
            self._end_stream()

        finished = self._stream_pieces(script, piece, error)
        if finished and not pieces:
            self._write(f"data: {json.dumps(chunk('', True))}\n\n")
        if script.error_after is None:
            self._end_stream()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # clients that go away mid-answer are expected here


class FakeLLMServer:
    """Background-thread fake of both APIs. ``start()``/``stop()`` or use as a context manager."""

    def __init__(self, host="127.0.0.1", port=0, default=None):
        self.host = host
        self.port = port
        self.default = default or Script()
        self.requests: list[RecordedRequest] = []
        self._scripts = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counter = itertools.count(1)
        self._server = None
        self._thread = None
        self.url = None

    # -- scripting ------------------------------------------------------------------------
    def push(self, *scripts, **fields):
        """Queue scripts (or one Script built from keyword fields) for the next requests."""
        if fields:
            scripts = (*scripts, Script(**fields))
        with self._lock:
            self._scripts.extend(scripts)
        return self

    def clear(self):
        """Forget queued scripts and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    @property
    def pending(self):
        with self._lock:
            return len(self._scripts)

    @property
    def calls(self):
        with self._lock:
            return len(self.requests)

    @property
    def last(self) -> RecordedRequest | None:
        with self._lock:
            return self.requests[-1] if self.requests else None

    def _next(self, record):
        with self._lock:
            self.requests.append(record)
            return self._scripts.popleft() if self._scripts else self.default

    def _ids(self):
        return next(self._counter)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self):
        handler = type("FakeHandler", (_Handler,), {"fake": self})
        self._stopping.clear()
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()  # wake handlers sleeping in a hang
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def serve_forever(self):
        """Serve in the calling thread until interrupted (the command-line mode)."""
        handler = type("FakeHandler", (_Handler,), {"fake": self})
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        print(f"fake LLM server listening on {self.url}", flush=True)
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._stopping.set()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _NoRecordServer(FakeLLMServer):
    """Command-line mode: keeps no request log (it runs forever)."""

    def _next(self, record):
        return self.default


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake Anthropic + Gemini API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--chunks", type=int, default=20, help="text chunks per streamed answer")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between chunks")
    args = parser.parse_args(argv)
    server = _NoRecordServer(args.host, args.port, default=Script(chunks=default_chunks(args.chunks), delay=args.delay))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started in the background, where SIGINT is ignored
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
