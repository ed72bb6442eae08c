"""httpcore's network layer on plain asyncio streams, for the providers' clients.

httpcore's default backend goes through anyio: every socket read opens a
cancel scope (``fail_after``), maps exceptions through two context managers
and asks which event loop is running. At 200 streams in flight that was
~20 µs of CPU per streamed token on top of the rest (bench/worker.py,
realistic workload). The worker runs on asyncio only, so this backend
reads and writes asyncio streams directly, with ``asyncio.timeout`` where a
timeout is set. It speaks httpcore's documented ``AsyncNetworkBackend``
interface and raises httpcore's own errors, which httpx maps as usual.
"""

import asyncio
import select

import httpcore2
from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream

# Python errors -> httpcore errors, per operation.
_READ = {TimeoutError: httpcore2.ReadTimeout, OSError: httpcore2.ReadError}
_WRITE = {TimeoutError: httpcore2.WriteTimeout, OSError: httpcore2.WriteError}
_CONNECT = {TimeoutError: httpcore2.ConnectTimeout, OSError: httpcore2.ConnectError}


def _socket_readable(sock):
    """Whether a read would return at once (data, or the end of the stream); a gone socket counts."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _mapped(error, mapping):
    for kind, replacement in mapping.items():
        if isinstance(error, kind):
            return replacement(error)
    return error


async def _within(timeout, awaitable):
    if timeout is None:
        return await awaitable
    async with asyncio.timeout(timeout):
        return await awaitable


class AsyncioStream(AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes, timeout=None):
        try:
            return await _within(timeout, self._reader.read(max_bytes))
        except (TimeoutError, OSError) as error:
            raise _mapped(error, _READ) from error

    async def write(self, buffer, timeout=None):
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            await _within(timeout, self._writer.drain())
        except (TimeoutError, OSError) as error:
            raise _mapped(error, _WRITE) from error

    async def aclose(self):
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass  # the peer already went: closed either way

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        try:
            await _within(timeout, self._writer.start_tls(ssl_context, server_hostname=server_hostname))
        except (TimeoutError, OSError) as error:
            await self.aclose()
            raise _mapped(error, _CONNECT) from error
        return self

    def get_extra_info(self, info):
        if info == "is_readable":
            # Asked of an idle kept-alive connection: readable means the server closed it.
            # asyncio may have read the end of the stream already, or not yet (then the
            # socket itself is readable: the check httpcore's own backends make).
            if self._reader.at_eof() or self._writer.is_closing():
                return True
            return _socket_readable(self._writer.get_extra_info("socket"))
        name = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        return self._writer.get_extra_info(name)


class AsyncioBackend(AsyncNetworkBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        local = (local_address, 0) if local_address else None
        try:
            reader, writer = await _within(timeout, asyncio.open_connection(host, port, local_addr=local))
        except (TimeoutError, OSError) as error:
            raise _mapped(error, _CONNECT) from error
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        try:
            reader, writer = await _within(timeout, asyncio.open_unix_connection(path))
        except (TimeoutError, OSError) as error:
            raise _mapped(error, _CONNECT) from error
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)
