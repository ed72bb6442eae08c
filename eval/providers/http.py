"""The HTTP client under a provider SDK: several small connection pools.

httpcore walks every connection of its pool whenever a request starts or
ends, and probes each idle one's socket (``has_expired``). With 200 streams
in one pool that walk was a quarter of the worker's CPU (bench/worker.py,
realistic workload). Spreading requests round-robin over pools of about 32
connections keeps each walk short; keep-alive works within each pool. The
SDK client stays one per process; only its connection pool is split.

Each pool does its network I/O on plain asyncio (asyncio_network.py: no anyio
cancel scope per socket read) and all of them share one TLS context (loading
the CA bundle once, not once per pool: ~35 ms each).
"""

import itertools
import math
import socket
import urllib.request

import httpcore2
import httpx2

from eval.providers.asyncio_network import AsyncioBackend

CONNECTIONS_PER_POOL = 32
MAX_POOLS = 16


def _keepalive_options():
    # What the anthropic SDK's default client sets: find dead peers after ~60 s idle.
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)]
    for name, value in (("TCP_KEEPINTVL", 60), ("TCP_KEEPCNT", 5), ("TCP_KEEPIDLE", 60)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


class AsyncioHTTPTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport over an httpcore pool that does its I/O on plain asyncio.
    httpx takes no network backend argument, so the pool it built is replaced
    by the same pool with ours (httpx wraps requests and maps errors as before)."""

    def __init__(self, *, ssl_context, max_connections, socket_options):
        super().__init__(verify=ssl_context, socket_options=socket_options)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=httpx2.Limits(max_connections=None).keepalive_expiry,
            socket_options=socket_options,
            network_backend=AsyncioBackend(),
        )


class PooledTransport(httpx2.AsyncBaseTransport):
    """``pools`` connection pools sharing ``max_connections``; requests go round-robin."""

    def __init__(self, pools, max_connections):
        per_pool = max(1, math.ceil(max_connections / pools))
        ssl_context = httpx2.create_ssl_context()
        options = _keepalive_options()
        self.pools = [
            AsyncioHTTPTransport(ssl_context=ssl_context, max_connections=per_pool, socket_options=options)
            for _ in range(pools)
        ]
        self._next = itertools.cycle(self.pools)

    async def handle_async_request(self, request):
        return await next(self._next).handle_async_request(request)

    async def aclose(self):
        for pool in self.pools:
            await pool.aclose()


def pool_count(max_in_flight):
    return min(MAX_POOLS, max(1, math.ceil(max_in_flight / CONNECTIONS_PER_POOL)))


def async_http_client(max_in_flight, default_client):
    """An ``httpx2.AsyncClient`` for up to ``max_in_flight`` concurrent requests.

    ``default_client(**kwargs)`` builds the SDK's default client; its own
    transport is kept when the environment names a proxy (it honours one; ours would not)."""
    if urllib.request.getproxies():
        limits = httpx2.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
        return default_client(limits=limits)
    return default_client(transport=PooledTransport(pool_count(max_in_flight), max_in_flight))
