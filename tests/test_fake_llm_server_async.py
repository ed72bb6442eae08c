"""The fake LLM server's command-line mode (asyncio, what bench/worker.py runs): the real SDK
streams through it over kept-alive connections, it puts the threaded server's bytes on the wire,
many concurrent streams take about the time of one, and SIGTERM stops it cleanly."""

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import pytest

from tests.fakes.llm_server import AsyncFakeLLMServer, Script, default_chunks

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "Say something."}]


class CliServer:
    """``python -m tests.fakes.llm_server --port 0 ...`` in a subprocess."""

    def __init__(self, chunks, delay, *extra):
        command = [sys.executable, "-m", "tests.fakes.llm_server", "--port", "0"]
        command += ["--chunks", str(chunks), "--delay", str(delay), *extra]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # "fake LLM server listening on http://127.0.0.1:PORT"
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"the server did not start: {line!r} {self.process.communicate()[1]}")
        self.url = match[0]
        self.port = int(match[1])

    def stop(self, timeout=5):
        """SIGTERM, as bench/worker.py stops it; returns (exit code, stderr)."""
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stderr


@pytest.fixture
def start_cli():
    servers = []

    def start(chunks=4, delay=0.01, *extra):
        servers.append(CliServer(chunks, delay, *extra))
        return servers[-1]

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


def request_bytes(method, target, body=None, close=False):
    data = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {target} HTTP/1.1", "Host: fake", "Accept: */*"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def read_response(stream):
    """One whole HTTP response as raw bytes, framing included (Content-Length or chunked)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        if not line:
            raise EOFError(f"connection closed after {head!r}")
        head += line
    if b"\r\ntransfer-encoding: chunked\r\n" in head.lower():
        body = b""
        while True:
            size_line = stream.readline()
            size = int(size_line, 16)
            body += size_line + stream.read(size + 2)
            if size == 0:
                return head + body
    length = int(re.search(rb"\r\ncontent-length: (\d+)\r\n", head.lower())[1])
    return head + stream.read(length)


def exchange_all(port, requests):
    """Send the requests one after the other on ONE connection; the raw responses (Date blanked)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, sock.makefile("rb") as stream:
        answers = []
        for index, request in enumerate(requests):
            sock.sendall(request)
            answers.append(re.sub(rb"\r\nDate: [^\r]+\r\n", b"\r\nDate: -\r\n", read_response(stream)))
            if index == len(requests) - 1:
                assert stream.read() == b"", "Connection: close must close the connection"
    return answers


def test_the_anthropic_sdk_streams_through_kept_alive_connections(start_cli):
    server = start_cli(chunks=4, delay=0.01)
    client_ports = []

    async def remember_connection(response):
        client_ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    async def main():
        http_client = anthropic.DefaultAsyncHttpxClient(event_hooks={"response": [remember_connection]})
        client = anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0, http_client=http_client)
        answers = []
        try:
            for _ in range(3):
                stream = await client.messages.create(
                    model="claude-fake-1", max_tokens=64, messages=MESSAGES, stream=True
                )
                text, stop_reason, output_tokens, message_ids = "", None, None, []
                async for event in stream:
                    if event.type == "message_start":
                        message_ids.append(event.message.id)
                    elif event.type == "content_block_delta":
                        text += event.delta.text
                    elif event.type == "message_delta":
                        stop_reason, output_tokens = event.delta.stop_reason, event.usage.output_tokens
                answers.append((text, stop_reason, output_tokens, message_ids))
        finally:
            await client.close()
        return answers

    answers = asyncio.run(main())

    text = "".join(default_chunks(4))
    assert answers == [(text, "end_turn", 4, [f"msg_fake_{n}"]) for n in (1, 2, 3)]
    assert len(client_ports) == 3 and len(set(client_ports)) == 1, client_ports  # one connection, reused
    assert server.stop() == (0, "")


def test_the_asyncio_server_puts_the_threaded_servers_bytes_on_the_wire(start_cli):
    anthropic_body = {"model": "claude-fake-1", "max_tokens": 64, "messages": MESSAGES}
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": "Say something."}]}]}
    requests = [
        request_bytes("POST", "/v1/messages", {**anthropic_body, "stream": True}),
        request_bytes("POST", "/v1beta/models/gemini-fake:streamGenerateContent?alt=sse", gemini_body),
        request_bytes("POST", "/v1/messages?beta=true", anthropic_body),
        request_bytes("POST", "/v1beta/models/gemini-fake:generateContent", gemini_body),
        request_bytes("POST", "/v1beta/models/gemini-fake:streamGenerateContent", gemini_body),
        request_bytes("POST", "/v1/complete", {"prompt": "x"}),
        request_bytes("GET", "/nope"),
        request_bytes("GET", "/healthz", close=True),
    ]
    threaded = start_cli(4, 0.01, "--threaded")
    asynchronous = start_cli(4, 0.01)

    expected = exchange_all(threaded.port, requests)
    answers = exchange_all(asynchronous.port, requests)

    assert b'"id": "msg_fake_1"' in answers[0] and b"event: message_stop" in answers[0]
    assert b'"responseId": "resp_fake_2"' in answers[1] and b'"finishReason": "STOP"' in answers[1]
    for request, answer, reference in zip(requests, answers, expected, strict=True):
        assert answer == reference, request
    assert asynchronous.stop() == (0, "")


def test_a_hundred_concurrent_streams_take_about_as_long_as_one(start_cli):
    server = start_cli(chunks=20, delay=0.05)
    request = request_bytes(
        "POST", "/v1/messages", {"model": "m", "max_tokens": 64, "messages": MESSAGES, "stream": True}, close=True
    )

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        answer = await reader.read()  # to the end: the server closes after the answer
        writer.close()
        return answer

    async def main():
        started = time.monotonic()
        answers = await asyncio.gather(*(one() for _ in range(100)))
        return time.monotonic() - started, answers

    elapsed, answers = asyncio.run(main())

    for answer in answers:
        assert answer.count(b"event: content_block_delta") == 20
        assert answer.endswith(b'event: message_stop\ndata: {"type": "message_stop"}\n\n\r\n0\r\n\r\n')
    # One after the other they would take 100 s; on a busy 2-core box at once takes a few.
    assert elapsed < 10, f"100 streams of 1 s took {elapsed:.2f} s"
    assert server.stop() == (0, "")


def test_sigterm_mid_stream_exits_cleanly(start_cli):
    server = start_cli(chunks=100, delay=0.1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request_bytes("POST", "/v1/messages", {"model": "m", "stream": True}))
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK\r\n")
        started = time.monotonic()
        assert server.stop() == (0, "")  # no traceback on stderr
    assert time.monotonic() - started < 5  # the stream had 10 s left


def test_the_asyncio_server_refuses_scripts_it_cannot_play():
    for fields in ({"status": 429}, {"cut_after": 1}, {"hang": 1.0}, {"error_after": 0}, {"block_reason": "SAFETY"}):
        with pytest.raises(ValueError):
            AsyncFakeLLMServer(default=Script(**fields))
    AsyncFakeLLMServer(default=Script(chunks=["a"], delay=0.01, stop_reason="max_tokens", status=200))
