import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.test import Client

from eval import broker as queue
from eval.broker import pubsub
from eval.worker.service import serve


def wait_for(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``.

    A deadline for "eventually", not a speed limit: generous, because the suite
    runs two passes with xdist workers on a small CI box. Speed goes in bench/."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def login(user):
    """A test client with ``user``'s session."""

    client = Client()
    client.force_login(user)
    return client


def free_port():
    """A loopback TCP port nothing listens on (for a server a test starts, or a refused connection)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_deploy(env, timeout=120):
    """`manage.py check --deploy --fail-level WARNING` in a child with ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class WorkerThread:
    """``eval.worker.service.serve(**options)`` on its own event loop in a thread,
    stoppable like SIGTERM. The one worker-in-a-thread of the suite: the
    ``worker_thread`` fixture (conftest.py) and the browser tests use it."""

    def __init__(self, **options):
        self.options = options
        self.loop = None
        self.stopping = None
        self.executor = None
        self.error = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):

        async def main():
            self.loop = asyncio.get_running_loop()
            self.stopping = asyncio.Event()
            self._ready.set()
            self.executor = await serve(stopping=self.stopping, **self.options)

        try:
            asyncio.run(main())
        except BaseException as error:  # surfaced by join()
            self.error = error
        finally:
            self._ready.set()
            connections.close_all()  # this thread's; a test database can then be flushed or dropped

    @property
    def alive(self):
        return self._thread.is_alive()

    def start(self, timeout=30):
        self._thread.start()
        assert self._ready.wait(timeout), f"worker thread did not start within {timeout} s"
        return self

    def stop(self, timeout=30):
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stopping.set)
        return self.join(timeout)

    def join(self, timeout=30):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "worker thread did not stop"
        if self.error:
            raise self.error
        return self.executor


class LiveServer:
    """The project's WSGI app on a loopback port, a thread per request (as
    gunicorn's threads), built after the test's settings (pytest-django's
    session-wide live_server keeps the middleware of the first test that used
    it). ``with LiveServer() as url:``; each request thread closes its own
    database connections, so a transactional test's database can be flushed."""

    def __init__(self):

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        class Server(ThreadingMixIn, WSGIServer):
            daemon_threads = True
            request_queue_size = 128  # a burst of connections is accepted, not dropped and retried

        self._handler = WSGIHandler()
        self._server = Server(("127.0.0.1", 0), Quiet)
        self._server.set_app(self._app)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _app(self, environ, start_response):

        try:
            return self._handler(environ, start_response)
        finally:
            connections.close_all()

    def __enter__(self):
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def parallel(calls, timeout=60):
    """Run every callable in ``calls`` in its own thread, released together by
    a barrier; returns their results in order (an exception is re-raised)."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(index, call):
        try:
            barrier.wait(timeout)
            results[index] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in threads), "a parallel call did not finish"
    return results


def use_pubsub(settings, monkeypatch, host, *, publish_timeout=None, reset_breaker=True):
    """The pubsub transport against the broker at ``host`` with names of its own
    (a fresh client: it reads the host when made)."""

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", host)
    name = uuid.uuid4().hex[:8]
    settings.JOB_TRANSPORT = "pubsub"
    settings.PUBSUB_PROJECT_ID = "test-project"
    settings.PUBSUB_TOPIC = f"jobs-{name}"
    settings.PUBSUB_SUBSCRIPTION = f"worker-{name}"
    settings.PUBSUB_DEAD_LETTER_TOPIC = f"dead-{name}"
    if publish_timeout is not None:
        settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS = publish_timeout
    pubsub.reset_publisher()
    if reset_breaker:
        queue.reset_breaker()
