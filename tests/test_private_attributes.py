"""Private attributes of libraries that this project relies on. An upgrade may
rename or reshape them without notice; these tests fail that day instead of
the product quietly losing what it built on them.

- httpx2's ``AsyncHTTPTransport._pool``: eval/providers/http.py replaces it with
  a pool doing its I/O on plain asyncio. Were httpx to read another attribute,
  requests would go through httpx's own pool and ours would sit unused.
- django-ninja's ``ninja.openapi.docs._csrf_needed(api)``: eval/api/app.py asks
  it whether the docs page must send the X-CSRFToken header.
"""

import asyncio
import http.server
import inspect
import threading
from types import SimpleNamespace

import httpcore2
import httpx2
import pytest
from ninja.openapi import docs

from eval.api.app import api
from eval.providers.asyncio_network import AsyncioBackend
from eval.providers.http import AsyncioHTTPTransport


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_it_finds_httpx_pool_where_http_py_replaces_it():
    transport = httpx2.AsyncHTTPTransport()
    assert isinstance(transport._pool, httpcore2.AsyncConnectionPool)
    # The options http.py builds its own pool with are still the pool's.
    accepted = inspect.signature(httpcore2.AsyncConnectionPool).parameters
    for name in ("ssl_context", "max_connections", "max_keepalive_connections", "keepalive_expiry"):
        assert name in accepted
    assert {"socket_options", "network_backend"} <= set(accepted)


def test_it_sends_requests_through_the_pool_http_py_put_in(server):
    transport = AsyncioHTTPTransport(ssl_context=httpx2.create_ssl_context(), max_connections=2, socket_options=[])
    ours = transport._pool
    used = []
    connect = AsyncioBackend.connect_tcp

    async def counted(backend, *args, **kwargs):
        used.append(backend)
        return await connect(backend, *args, **kwargs)

    async def get():
        async with httpx2.AsyncClient(transport=transport) as client:
            return await client.get(server + "/")

    AsyncioBackend.connect_tcp = counted
    try:
        response = asyncio.run(get())
    finally:
        AsyncioBackend.connect_tcp = connect
    assert response.status_code == 200 and response.text == "hello"
    assert transport._pool is ours
    assert len(used) == 1  # the connection was opened by our backend, in our pool


def test_it_asks_ninja_whether_the_docs_page_needs_csrf():
    assert list(inspect.signature(docs._csrf_needed).parameters) == ["api"]
    assert docs._csrf_needed(SimpleNamespace(auth=[SimpleNamespace(csrf=True)])) is True
    assert docs._csrf_needed(SimpleNamespace(auth=[SimpleNamespace(csrf=False)])) is False
    # Our API: the session cookie needs the header, so the docs page sends it.
    assert docs._csrf_needed(api) is True
