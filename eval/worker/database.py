"""Database access for the async worker.

All ORM calls run on a small fixed pool of threads, so a worker with hundreds
of jobs in flight holds at most WORKER_DB_THREADS connections. A lost
connection (database restart) is closed and the call retried with backoff.
"""

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import InterfaceError, OperationalError, close_old_connections, connection
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, wait_exponential

log = logging.getLogger(__name__)


def _reset_connection(_retry_state=None):
    try:
        connection.close()
    except Exception:  # the connection is already broken; closing may fail too
        pass


class Database:
    def __init__(self, threads, *, retry_for_seconds=120.0):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker-db")
        # Claims get their own thread and connection, so new work is never
        # queued behind a burst of progress and final writes.
        self._claim_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-db-claim")
        self._retry_for_seconds = retry_for_seconds
        self._give_up_at = None  # once the worker stops: no retry past this (monotonic)
        self.calls = 0

    def stop_retrying_after(self, seconds):
        """The worker is stopping: a lost database is retried ``seconds`` more at most,
        not the full retry window (a SIGTERM must not wait minutes for a database that is gone)."""
        self._give_up_at = time.monotonic() + seconds

    def _should_stop(self, retry_state):
        if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
            return True
        return retry_state.seconds_since_start >= self._retry_for_seconds

    def _run(self, fn, *args, **kwargs):
        close_old_connections()
        for attempt in Retrying(
            retry=retry_if_exception_type((OperationalError, InterfaceError)),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=self._should_stop,
            before_sleep=lambda state: (_reset_connection(), before_sleep_log(log, logging.WARNING)(state)),
            reraise=True,
        ):
            with attempt:
                return fn(*args, **kwargs)

    async def call(self, fn, *args, **kwargs):
        self.calls += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(self._run, fn, *args, **kwargs))

    async def claim(self, fn, *args, **kwargs):
        self.calls += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._claim_pool, functools.partial(self._run, fn, *args, **kwargs))

    def close(self):
        """Close every pool thread's connection (each from its own thread)."""
        for pool in (self._pool, self._claim_pool):
            threads = pool._max_workers
            barrier = threading.Barrier(threads)

            def _close(barrier=barrier):
                barrier.wait(timeout=10)  # one task per thread
                _reset_connection()

            futures = [pool.submit(_close) for _ in range(threads)]
            for future in futures:
                try:
                    future.result(timeout=15)
                except Exception:
                    log.warning("could not close a worker database connection", exc_info=True)
            pool.shutdown(wait=True)
