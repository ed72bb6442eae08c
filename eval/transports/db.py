"""The ``db`` transport: workers claim queued rows themselves.

On PostgreSQL a LISTEN connection wakes the claim loop as soon as a job is
committed; on SQLite (and as a fallback for delayed retries) it polls."""

import asyncio
import logging
import threading

from django.conf import settings
from django.db import connection

from eval.jobs import claims
from eval.queue import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class DbTransport:
    name = "db"

    def __init__(self, executor, *, once=False, max_jobs=None):
        self.executor = executor
        self.once = once
        self.max_jobs = max_jobs
        self.claimed = 0
        self._wake = asyncio.Event()
        self._listener = None
        self._stop_listening = threading.Event()

    async def run(self, stopping: asyncio.Event):
        loop = asyncio.get_running_loop()
        poll = settings.WORKER_POLL_INTERVAL_MS / 1000
        if connection.vendor == "postgresql":
            self._start_listener(loop)  # NOTIFY wakes us at once; polling catches delayed retries
        try:
            while not stopping.is_set():
                # Clear before claiming, so a wake-up during the claim is not lost.
                self._wake.clear()
                self.executor.slot_freed.clear()
                if self.max_jobs is not None and self.claimed >= self.max_jobs:
                    if not self.executor.running:
                        return
                    await self._sleep(stopping, poll)
                    continue
                limit = self.executor.free_slots
                if self.max_jobs is not None:
                    limit = min(limit, self.max_jobs - self.claimed)
                jobs = []
                if limit:
                    try:
                        jobs = await self.executor.db.claim(claims.claim_next, self.executor.worker_id, limit)
                    except Exception:
                        log.exception("claim failed; retrying")
                for job in jobs:
                    self.executor.start_job(job)
                self.claimed += len(jobs)
                if jobs and len(jobs) == limit:
                    continue  # maybe more waiting
                if self.once and not jobs and not self.executor.running:
                    if not await self.executor.db.call(claims.anything_queued):
                        return
                await self._sleep(stopping, poll)
        finally:
            self._stop_listening.set()
            if self._listener is not None:
                await asyncio.to_thread(self._listener.join, 5)

    async def _sleep(self, stopping, timeout):
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self.executor.slot_freed.wait()),
            asyncio.ensure_future(stopping.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _start_listener(self, loop):
        params = connection.get_connection_params()
        thread = threading.Thread(target=self._listen, args=(loop, params), name="listen", daemon=True)
        thread.start()
        self._listener = thread

    def _listen(self, loop, params):
        import psycopg

        params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context", "prepare_threshold")}
        params.pop("pool", None)
        delay = 0.5
        while not self._stop_listening.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    delay = 0.5
                    loop.call_soon_threadsafe(self._wake.set)  # catch up on what we missed
                    while not self._stop_listening.is_set():
                        for _ in conn.notifies(timeout=0.25, stop_after=1):
                            loop.call_soon_threadsafe(self._wake.set)
            except Exception as error:
                if self._stop_listening.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", error, delay)
                self._stop_listening.wait(delay)
                delay = min(delay * 2, 10)

    def settle_remaining(self):
        """Nothing to hand over: rows are the queue."""
