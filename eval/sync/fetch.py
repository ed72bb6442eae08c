"""Reading a URL task source within limits: a total deadline
(SYNC_FETCH_TIMEOUT_SECONDS, from connecting to the last byte) and a size cap
(SYNC_FETCH_MAX_BYTES), and a stop request honoured within a fraction of a
second.

A socket timeout only bounds each read: a server that drips a byte every
few seconds never trips it. So the request runs in a helper thread that
hands the body over in chunks through a small queue; the reader waits for
each chunk in short slices, checking the deadline and the stop request
between them, and abandons the helper when either passes (the helper
notices at its next chunk or its socket timeout, and closes the connection).

    with open_url(url, shown=..., should_stop=...) as body:   # a binary stream
        for line in body: ...
"""

import http.client
import io
import queue
import threading
import time
import urllib.error
import urllib.request

from django.conf import settings

from eval.sync.formats import SourceError, SyncInterrupted

CHUNK = 64 * 1024
QUEUED_CHUNKS = 16  # at most ~1 MB read ahead of the sync
WAIT_SLICE_SECONDS = 0.2  # how often a waiting reader looks at the deadline and the stop request
READ_TIMEOUT_SECONDS = 60  # one socket read; the deadline bounds the whole fetch
HEADERS = {"Accept": "application/json, application/x-ndjson, text/csv", "User-Agent": "eval-sync/1"}


class FetchLimitExceeded(SourceError):
    """The source took longer than SYNC_FETCH_TIMEOUT_SECONDS or was larger than SYNC_FETCH_MAX_BYTES."""


def _never():
    return False


def open_url(url, *, shown, should_stop=None, timeout=None, max_bytes=None, clock=time.monotonic):
    """The response body of ``url`` as a buffered binary stream (close it).

    ``shown`` names the source in errors (the URL without its secrets).
    Raises SourceError (HTTP error, unreachable, a limit passed: also while
    reading) and SyncInterrupted when ``should_stop()`` turns true. ``clock``
    is what the deadline is measured on (tests inject one)."""
    timeout = settings.SYNC_FETCH_TIMEOUT_SECONDS if timeout is None else timeout
    max_bytes = settings.SYNC_FETCH_MAX_BYTES if max_bytes is None else max_bytes
    fetcher = _Fetcher(urllib.request.Request(url, headers=HEADERS), min(timeout, READ_TIMEOUT_SECONDS))
    body = _Body(fetcher, shown, should_stop or _never, clock() + timeout, timeout, max_bytes, clock)
    fetcher.start()
    try:
        body.open()
    except BaseException:
        body.close()
        raise
    return io.BufferedReader(body, CHUNK)


class _Fetcher(threading.Thread):
    """Does the request and puts ``(kind, value)`` messages on its queue:
    ("open", declared length or None), then ("chunk", bytes)..., then
    ("end", None); or ("error", exception) at any point."""

    def __init__(self, request, read_timeout):
        super().__init__(name="sync-fetch", daemon=True)  # never keeps the process alive
        self.request = request
        self.read_timeout = read_timeout
        self.messages = queue.Queue(maxsize=QUEUED_CHUNKS)
        self.cancelled = threading.Event()

    def run(self):
        try:
            with urllib.request.urlopen(self.request, timeout=self.read_timeout) as response:
                self.put("open", _declared_length(response))
                while not self.cancelled.is_set():
                    chunk = response.read1(CHUNK)
                    if not chunk:
                        self.put("end", None)
                        return
                    self.put("chunk", chunk)
        except Exception as error:  # handed to the reader, who words it
            self.put("error", error)

    def put(self, kind, value):
        """Queue a message; give up when the reader went away."""
        while not self.cancelled.is_set():
            try:
                self.messages.put((kind, value), timeout=WAIT_SLICE_SECONDS)
                return
            except queue.Full:
                continue

    def cancel(self):
        self.cancelled.set()


def _declared_length(response):
    try:
        return int(response.headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None


class _Body(io.RawIOBase):
    """The reader's side: chunks from the fetcher, within the limits."""

    def __init__(self, fetcher, shown, should_stop, deadline, timeout, max_bytes, clock):
        super().__init__()
        self.fetcher = fetcher
        self.shown = shown
        self.should_stop = should_stop
        self.deadline = deadline
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.clock = clock
        self.received = 0
        self.pending = memoryview(b"")
        self.opened = False
        self.ended = False

    def readable(self):
        return True

    def open(self):
        """Wait for the answer's headers (errors and a declared size over the cap surface here)."""
        kind, value = self.next_message()
        if kind != "open":
            self.unexpected(kind, value)
        if value is not None and value > self.max_bytes:
            self.too_large(f"it declares {value} bytes")
        self.opened = True

    def readinto(self, buffer):
        while not self.pending and not self.ended:
            self.pending = memoryview(self.next_chunk())
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size

    def next_chunk(self):
        kind, value = self.next_message()
        if kind == "end":
            self.ended = True
            return b""
        if kind != "chunk":
            self.unexpected(kind, value)
        self.received += len(value)
        if self.received > self.max_bytes:
            self.too_large(f"more than {self.max_bytes} bytes arrived")
        return value

    def next_message(self):
        """The fetcher's next message, waited for in slices; the limits are checked between them."""
        while True:
            if self.should_stop():
                raise SyncInterrupted
            left = self.deadline - self.clock()
            if left <= 0:
                raise FetchLimitExceeded(
                    f"{self.shown}: not read within SYNC_FETCH_TIMEOUT_SECONDS={self.timeout:g} s "
                    f"({self.received} bytes so far); fetch abandoned"
                )
            try:
                return self.fetcher.messages.get(timeout=min(WAIT_SLICE_SECONDS, left))
            except queue.Empty:
                continue

    def unexpected(self, kind, value):
        if kind == "error":
            raise _source_error(self.shown, value, reading=self.opened) from None
        raise SourceError(f"{self.shown}: the fetch ended unexpectedly ({kind})")

    def too_large(self, why):
        raise FetchLimitExceeded(
            f"{self.shown}: larger than SYNC_FETCH_MAX_BYTES={self.max_bytes} ({why}); fetch abandoned"
        )

    def close(self):
        self.fetcher.cancel()
        super().close()


def _source_error(shown, error, *, reading):
    if isinstance(error, urllib.error.HTTPError):
        return SourceError(f"{shown}: HTTP {error.code} {error.reason}")
    if reading and isinstance(error, (OSError, http.client.HTTPException)):
        return SourceError(f"{shown}: read failed: {error!r}")  # connection cut, timeout
    return SourceError(f"{shown}: {getattr(error, 'reason', error)}")
