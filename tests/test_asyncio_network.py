"""httpcore over plain asyncio streams (eval/providers/asyncio_network.py): the
network layer under the providers' SDK clients, against local servers: TLS
(a test CA from trustme), kept-alive connections, a server that closed an
idle one, and each failure as httpcore's own error."""

import asyncio
import http.server
import socket
import ssl
import threading

import httpcore2
import pytest
import trustme

from eval.providers.asyncio_network import AsyncioBackend


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self):
        if self.path == "/close":
            self.close_connection = True
        body = b"hello over tls"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls_server(ca):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client_context(ca=None):
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return context


def requests(context, *calls, **pool_options):
    """Run ``calls`` (method, url) one after the other on one pool; the answers
    (or the error raised) and the pool's connection count at the end."""

    async def go():
        async with httpcore2.AsyncConnectionPool(
            ssl_context=context, network_backend=AsyncioBackend(), **pool_options
        ) as pool:
            answers = []
            for method, url in calls:
                try:
                    response = await pool.request(method, url)
                    answers.append((response.status, response.content))
                except Exception as error:
                    answers.append(error)
            return answers, len(pool.connections)

    return asyncio.run(go())


def test_it_speaks_tls_and_keeps_the_connection_alive(ca, tls_server):
    answers, connections = requests(client_context(ca), ("GET", tls_server + "/"), ("GET", tls_server + "/"))
    assert answers == [(200, b"hello over tls")] * 2
    assert connections == 1


def test_a_connection_the_server_closed_is_not_reused(ca, tls_server):
    answers, _ = requests(client_context(ca), ("GET", tls_server + "/close"), ("GET", tls_server + "/"))
    assert answers == [(200, b"hello over tls")] * 2


def test_an_untrusted_certificate_is_a_connect_error(tls_server):
    (answer,), _ = requests(client_context(), ("GET", tls_server + "/"))
    assert isinstance(answer, httpcore2.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(answer)


def test_a_refused_connection_is_a_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    (answer,), _ = requests(client_context(), ("GET", f"http://127.0.0.1:{port}/"))
    assert isinstance(answer, httpcore2.ConnectError)


def test_a_silent_server_is_a_read_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts (in the kernel) and never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"

        async def go():
            async with httpcore2.AsyncConnectionPool(network_backend=AsyncioBackend()) as pool:
                with pytest.raises(httpcore2.ReadTimeout):
                    await pool.request("GET", url, extensions={"timeout": {"read": 0.2}})

        asyncio.run(go())
