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

LLM judge prompts (eval/evaluation/judges.py) are answered without a script when none is
queued: a request is a judge's when its model name contains ``judge`` or its prompt starts
with ``[judge-``. The answer is valid judge JSON (verdict ``a``, each rating question of the
prompt's rubric scored one below the top of its scale), unless the model name or the prompt
carries a marker: ``judge-malformed`` (prose, not JSON), ``judge-refuse`` (Anthropic
``stop_reason: refusal``, Gemini ``finishReason: SAFETY``, no text), ``judge-fenced`` (the
valid JSON inside a json fence).

Run as a process (benchmarks): ``python -m tests.fakes.llm_server --port 8123 --chunks 20
--delay 0.05`` serves the default script forever, keeping no request log, on an asyncio server
(:class:`AsyncFakeLLMServer`: hundreds of concurrent streams for little CPU; ``--port 0`` picks
a free port, printed on the first line). ``--threaded`` serves with the thread-per-connection
server instead, to compare. Both put the same bytes on the wire: every payload comes from the
shared builders below (``anthropic_stream_*``, ``gemini_chunk``, ``chunk_frame``...).
"""

import argparse
import asyncio
import email.utils
import itertools
import json
import re
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
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


# -- wire format shared by both servers (the threaded one and the asyncio command-line one) ---
# Anything either server puts on the wire is built here, so the two cannot drift apart.

STREAM_HEADERS = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("Transfer-Encoding", "chunked"),
)
ANTHROPIC_HEADERS = {"request-id": "req_fake"}
LAST_CHUNK = b"0\r\n\r\n"  # the end of a chunked body
HEALTHY = {"ok": True}
NOT_FOUND = {"error": {"code": 404, "message": "not found"}}


def no_route(path):
    """The 404 body for a POST to an unknown path."""
    return {"error": {"code": 404, "message": f"No route for {path}"}}


def parse_body(raw):
    """A request body: parsed JSON, the text when it is not JSON, None when empty."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def json_bytes(payload):
    """A JSON response body."""
    return json.dumps(payload).encode()


def chunk_frame(text):
    """``text`` as one HTTP/1.1 chunk (every SSE event goes out as its own chunk)."""
    data = text.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_event(name, data):
    """An Anthropic-style SSE event: ``event:`` line and JSON ``data:`` line."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def sse_data(payload):
    """A Gemini-style SSE event: a JSON ``data:`` line only."""
    return f"data: {json.dumps(payload)}\n\n"


def anthropic_message(message_id, model, text, stop_reason, input_tokens, output_tokens):
    """The non-streamed Messages API answer."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def anthropic_stream_start(message_id, model, input_tokens):
    """The ``message_start`` event that opens a stream."""
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return sse_event("message_start", {"type": "message_start", "message": message})


def anthropic_stream_opening():
    """The events after ``message_start`` and before the first text: content_block_start, ping."""
    return [
        sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse_event("ping", {"type": "ping"}),
    ]


def anthropic_stream_piece(text):
    """One ``content_block_delta`` text event."""
    return sse_event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )


def anthropic_stream_tail(stop_reason, output_tokens):
    """The events that close a complete stream: content_block_stop, message_delta, message_stop."""
    return [
        sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        sse_event("message_stop", {"type": "message_stop"}),
    ]


def anthropic_stream_error(error_type, message):
    """An in-stream ``error`` event."""
    return sse_event("error", {"type": "error", "error": {"type": error_type, "message": message}})


def gemini_usage(input_tokens, output_tokens):
    return {
        "promptTokenCount": input_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": input_tokens + output_tokens,
    }


def gemini_chunk(text, model, response_id, finish=None, usage=None):
    """One generateContent response (a whole answer, or one streamed chunk); the last one has
    ``finish`` (finishReason) and ``usage`` (usageMetadata)."""
    candidate = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    payload = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
    if finish is not None:
        candidate["finishReason"] = finish
    if usage is not None:
        payload["usageMetadata"] = usage
    return payload


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


def judge_script(record):
    """The answer to a judge's request (see the module docstring), or None for any other request."""
    model, prompt = _model_and_prompt(record)
    if "judge" not in model and not prompt.startswith("[judge-"):
        return None
    marked = f"{model}\n{prompt}"
    if "judge-refuse" in marked:
        return Script(chunks=[], stop_reason="refusal" if record.api == "anthropic" else "SAFETY")
    if "judge-malformed" in marked:
        return Script(chunks=["I prefer ", "Answer A: ", "it is clearer."])
    text = json.dumps({"verdict": "a", "scores": _judge_scores(prompt), "reason": "Answer A is clearer."})
    if "judge-fenced" in marked:
        text = f"```json\n{text}\n```\n"
    return Script(chunks=[text[i : i + 16] for i in range(0, len(text), 16)])


def _judge_scores(prompt):
    found = re.search(r"<rubric_questions>\n(.*?)\n</rubric_questions>", prompt, re.DOTALL)
    questions = json.loads(found[1]) if found else []
    return {q["key"]: q.get("scale", [1, 5])[1] - 1 for q in questions if q.get("type") == "rating"}


def _model_and_prompt(record):
    body = record.body if isinstance(record.body, dict) else {}
    if record.api == "anthropic":
        messages = body.get("messages") or [{}]
        content = messages[0].get("content", "")
        text = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
        return body.get("model", ""), text
    match = GEMINI_PATH.match(record.path)
    contents = body.get("contents") or [{}]
    parts = contents[0].get("parts", []) if isinstance(contents[0], dict) else []
    return (match["model"] if match else ""), "".join(part.get("text", "") for part in parts)


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
        return parse_body(self.rfile.read(length) if length else b"")

    def _send_json(self, status, payload, headers=None):
        data = json_bytes(payload)
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
        for name, value in STREAM_HEADERS:
            self.send_header(name, value)
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.flush()

    def _write(self, text):
        self.wfile.write(chunk_frame(text))
        self.wfile.flush()

    def _end_stream(self):
        self.wfile.write(LAST_CHUNK)
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
            self._send_json(404, no_route(parts.path))
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
            self._send_json(200, HEALTHY)
        else:
            self._send_json(404, NOT_FOUND)

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
            self._send_json(script.status, payload, {**ANTHROPIC_HEADERS, **self._error_headers(script)})
            return
        model = body.get("model", "claude-fake")
        message_id = f"msg_fake_{self.fake._ids()}"
        stop_reason = script.stop_reason or "end_turn"
        usage_in = script.input_tokens
        if not body.get("stream"):
            if script.abort_after is not None:
                self._abort()
            text = "".join(script.chunks)
            payload = anthropic_message(message_id, model, text, stop_reason, usage_in, script.total_output_tokens())
            self._send_json(200, payload, {**ANTHROPIC_HEADERS, **script.headers})
            return

        self._start_stream({**ANTHROPIC_HEADERS, **script.headers})
        self._write(anthropic_stream_start(message_id, model, usage_in))
        for text in anthropic_stream_opening():
            self._write(text)

        def piece(index, text):
            self._write(anthropic_stream_piece(text))

        def error():
            self._write(anthropic_stream_error(script.error_type, script.error_message or f"Fake {script.error_type}"))
            self._end_stream()

        if not self._stream_pieces(script, piece, error):
            if script.error_after is None:
                self._end_stream()
            return
        for text in anthropic_stream_tail(stop_reason, script.total_output_tokens()):
            self._write(text)
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

    def _gemini_blocked(self, script, model, response_id, stream):
        """The prompt itself is blocked: promptFeedback.blockReason and no candidates."""
        payload = {
            "promptFeedback": {"blockReason": script.block_reason},
            "usageMetadata": {"promptTokenCount": script.input_tokens, "totalTokenCount": script.input_tokens},
            "modelVersion": model,
            "responseId": response_id,
        }
        if stream:
            self._start_stream(script.headers)
            self._write(sse_data(payload))
            self._end_stream()
        else:
            self._send_json(200, payload, script.headers)

    def _gemini(self, script, model, stream):
        if script.status and script.status != 200 and script.error_after is None:
            payload = script.error_body or self._gemini_error(script.status, script)
            self._send_json(script.status, payload, self._error_headers(script))
            return
        response_id = f"resp_fake_{self.fake._ids()}"
        finish = script.stop_reason or "STOP"

        def chunk(text, last):
            if not last:
                return gemini_chunk(text, model, response_id)
            usage = gemini_usage(script.input_tokens, script.total_output_tokens())
            return gemini_chunk(text, model, response_id, finish, usage)

        if script.block_reason:
            self._gemini_blocked(script, model, response_id, stream)
            return
        if not stream:
            if script.abort_after is not None:
                self._abort()
            self._send_json(200, chunk("".join(script.chunks), True), script.headers)
            return
        self._gemini_stream(script, chunk)

    def _gemini_stream(self, script, chunk):
        """Stream the scripted chunks; ``chunk(text, last)`` builds each one (the last with usage)."""
        self._start_stream(script.headers)
        pieces = script.chunks
        last_index = len(pieces) - 1
        complete_run = script.cut_after is None and script.abort_after is None and script.error_after is None

        def piece(index, text):
            self._write(sse_data(chunk(text, complete_run and index == last_index)))

        def error():
            status = script.status or 503
            self._write(sse_data(script.error_body or self._gemini_error(status, script)))
            self._end_stream()

        finished = self._stream_pieces(script, piece, error)
        if finished and not pieces:
            self._write(sse_data(chunk("", True)))
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
            if self._scripts:
                return self._scripts.popleft()
        return judge_script(record) or self.default

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


class AsyncFakeLLMServer:
    """The command-line server on asyncio: one task per connection, no threads.

    It answers every request with ``default``, as the threaded server does when no script is
    queued, and keeps no request log. Only a plain script is supported (chunks, delay,
    stop_reason, token counts, extra headers): no HTTP errors, blocks, hangs, cuts, aborts or
    in-stream errors. The bytes on the wire are the threaded server's (the same builders
    above); whatever does not depend on the request is encoded once, up front.
    """

    DRAIN_ABOVE = 64 * 1024  # wait for the client only when this much is buffered for it
    _UNSUPPORTED = (
        "block_reason",
        "error_body",
        "retry_after",
        "retry_after_ms",
        "retry_delay",
        "cut_after",
        "abort_after",
        "hang_after",
        "error_after",
    )

    def __init__(self, host="127.0.0.1", port=0, default=None):
        script = default or Script()
        if (
            script.status not in (None, 200)
            or script.hang
            or any(getattr(script, name) is not None for name in self._UNSUPPORTED)
        ):
            raise ValueError("the asyncio server only plays plain scripts (chunks, delay, stop_reason, tokens)")
        self.host = host
        self.port = port
        self.default = script
        self.url = None
        self._ids = itertools.count(1)
        self._tasks = set()
        self._date_second = None
        self._date = b""
        self._server_line = f"Server: {_Handler.server_version} {_Handler.sys_version}\r\n".encode("latin-1")
        self._output_tokens = script.total_output_tokens()
        self._stop_reason = script.stop_reason or "end_turn"
        self._finish = script.stop_reason or "STOP"
        self._anthropic_headers = {**ANTHROPIC_HEADERS, **script.headers}
        self._anthropic_stream_headers = self._header_lines((*STREAM_HEADERS, *self._anthropic_headers.items()))
        self._gemini_stream_headers = self._header_lines((*STREAM_HEADERS, *script.headers.items()))
        # Anthropic: all but message_start is the same for every answer. The text pieces are the
        # steps (a delay before each), the closing events go out with the last one.
        opening = b"".join(chunk_frame(text) for text in anthropic_stream_opening())
        closing = b"".join(chunk_frame(text) for text in anthropic_stream_tail(self._stop_reason, self._output_tokens))
        steps = [chunk_frame(anthropic_stream_piece(text)) for text in script.chunks]
        if steps:
            steps[-1] += closing + LAST_CHUNK
        else:
            opening += closing + LAST_CHUNK
        self._anthropic_opening = opening
        self._anthropic_steps = steps

    # -- HTTP -----------------------------------------------------------------------------
    @staticmethod
    def _header_lines(headers):
        return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)

    def _head(self, status, header_lines):
        """Status line and headers, as BaseHTTPRequestHandler writes them (Server, Date first)."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = email.utils.formatdate(now, usegmt=True).encode("latin-1")
        phrase = HTTPStatus(status).phrase.encode("latin-1")
        return b"HTTP/1.1 %d %s\r\n%sDate: %s\r\n%s\r\n" % (status, phrase, self._server_line, self._date, header_lines)

    def _json(self, status, payload, headers=None):
        data = json_bytes(payload)
        fields = (("Content-Type", "application/json"), ("Content-Length", len(data)), *(headers or {}).items())
        return self._head(status, self._header_lines(fields)) + data

    async def _connection(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while await self._request(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away mid-request or mid-answer (or sent nonsense): drop it quietly
        except asyncio.CancelledError:
            pass  # serve() is stopping. Ending cancelled would log a traceback (asyncio.streams, 3.11)
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _request(self, reader, writer):
        """Read and answer one request; True to keep the connection for the next one."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # closed between requests: the normal end of a keep-alive connection
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split()
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers.setdefault(name.strip().lower(), value.strip())
        length = int(headers.get("content-length") or 0)
        raw = await reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()  # keep-alive rules of BaseHTTPRequestHandler
        keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")

        if method == "POST":
            path = urlsplit(target).path
            match = GEMINI_PATH.match(path)
            if path == "/v1/messages":
                body = parse_body(raw)
                await self._anthropic(writer, body if isinstance(body, dict) else {})
            elif match:
                await self._gemini(writer, match["model"], match["method"] == "streamGenerateContent")
            else:
                writer.write(self._json(404, no_route(path)))
        elif method == "GET" and target in ("/", "/healthz"):
            writer.write(self._json(200, HEALTHY))
        else:
            writer.write(self._json(404, NOT_FOUND))
        await writer.drain()  # raises if the client has gone
        return keep_alive

    async def _stream(self, writer, start, steps):
        """Write ``start`` now, then each step after the script's delay."""
        writer.write(start)
        transport = writer.transport
        delay = self.default.delay
        for step in steps:
            if delay > 0:
                await asyncio.sleep(delay)
            if transport.is_closing():
                raise ConnectionResetError
            writer.write(step)
            if transport.get_write_buffer_size() > self.DRAIN_ABOVE:
                await writer.drain()

    # -- the two APIs ---------------------------------------------------------------------
    async def _anthropic(self, writer, body):
        script = self.default
        model = body.get("model", "claude-fake")
        message_id = f"msg_fake_{next(self._ids)}"
        if not body.get("stream"):
            text = "".join(script.chunks)
            payload = anthropic_message(
                message_id, model, text, self._stop_reason, script.input_tokens, self._output_tokens
            )
            writer.write(self._json(200, payload, self._anthropic_headers))
            return
        start = (
            self._head(200, self._anthropic_stream_headers)
            + chunk_frame(anthropic_stream_start(message_id, model, script.input_tokens))
            + self._anthropic_opening
        )
        await self._stream(writer, start, self._anthropic_steps)

    async def _gemini(self, writer, model, stream):
        script = self.default
        response_id = f"resp_fake_{next(self._ids)}"
        usage = gemini_usage(script.input_tokens, self._output_tokens)
        if not stream:
            payload = gemini_chunk("".join(script.chunks), model, response_id, self._finish, usage)
            writer.write(self._json(200, payload, script.headers))
            return
        head = self._head(200, self._gemini_stream_headers)
        pieces = script.chunks
        if not pieces:
            last = gemini_chunk("", model, response_id, self._finish, usage)
            await self._stream(writer, head + chunk_frame(sse_data(last)) + LAST_CHUNK, ())
            return

        def steps():
            last_index = len(pieces) - 1
            for index, text in enumerate(pieces):
                if index < last_index:
                    yield chunk_frame(sse_data(gemini_chunk(text, model, response_id)))
                else:
                    last = gemini_chunk(text, model, response_id, self._finish, usage)
                    yield chunk_frame(sse_data(last)) + LAST_CHUNK

        await self._stream(writer, head, steps())

    # -- lifecycle ------------------------------------------------------------------------
    async def serve(self, stopping=None):
        """Serve until ``stopping`` is set; without one, until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        if stopping is None:
            stopping = asyncio.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT even when started in the background
                loop.add_signal_handler(signum, stopping.set)
        server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        print(f"fake LLM server listening on {self.url}", flush=True)
        try:
            await stopping.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake Anthropic + Gemini API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--chunks", type=int, default=20, help="text chunks per streamed answer")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between chunks")
    parser.add_argument(
        "--threaded", action="store_true", help="serve with the thread-per-connection server (to compare)"
    )
    args = parser.parse_args(argv)
    script = Script(chunks=default_chunks(args.chunks), delay=args.delay)
    if not args.threaded:
        try:
            asyncio.run(AsyncFakeLLMServer(args.host, args.port, default=script).serve())
        except KeyboardInterrupt:  # only before the loop has taken over SIGINT
            pass
        return
    server = _NoRecordServer(args.host, args.port, default=script)

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
