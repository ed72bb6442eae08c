"""The ``db`` transport: workers claim queued rows themselves.

On PostgreSQL a LISTEN connection wakes the claim loop as soon as a job is
committed; on SQLite (and as a fallback for delayed retries) it polls."""

import asyncio
import logging
import threading

import psycopg
from django.conf import settings
from django.db import connection

from eval.broker import NOTIFY_CHANNEL
from eval.jobs import claims

log = logging.getLogger(__name__)

# Rows per claim statement. A worker with 1,000 free slots claims them in
# several statements: while the next one runs in the database, the loop starts
# the jobs of the last (one 1,000-row claim, then 1,000 task starts, one after
# the other, cost a wave of jobs ~40 ms more; bench/worker.py --concurrency 1000).
CLAIM_BATCH = 200


class DbTransport:
    name = "db"

    def __init__(self, executor, *, once=False, max_jobs=None):
        self.executor = executor
        self.once = once
        self.max_jobs = max_jobs
        self.claimed = 0
        self._wake = asyncio.Event()
        self._listener = Listener(self._wake)

    async def run(self, stopping: asyncio.Event):
        poll = settings.WORKER_POLL_INTERVAL_MS / 1000
        self._listener.start()
        try:
            while not stopping.is_set() and not await self.finished():
                if not await self.claim_some():
                    await self._sleep(stopping, poll)
        finally:
            await self._listener.stop()

    # --- steps ------------------------------------------------------------------------------
    async def claim_some(self):
        """Claim jobs for the free slots and start them. True when it filled
        every slot it had (more may be waiting: go again at once)."""
        # Clear before claiming, so a wake-up during the claim is not lost.
        self._wake.clear()
        self.executor.slot_freed.clear()
        room = min(self._room(), CLAIM_BATCH)
        if not room:
            return False
        jobs = await self._claim(room)
        for job in jobs:
            self.executor.start_job(job)
        self.claimed += len(jobs)
        return len(jobs) == room

    async def finished(self):
        """--max-jobs: all N claimed and settled; --once: nothing running and nothing queued."""
        if self._quota_used_up():
            return not self.executor.running
        if not self.once or self.executor.running:
            return False
        return not await self.executor.db.call(claims.anything_queued)

    def leases_requeued(self):
        """The worker's lease repair requeued jobs: claim them now."""
        self._wake.set()

    # --- helpers ------------------------------------------------------------------------------
    def _quota_used_up(self):
        return self.max_jobs is not None and self.claimed >= self.max_jobs

    def _room(self):
        room = self.executor.free_slots
        if self.max_jobs is not None:
            room = min(room, self.max_jobs - self.claimed)
        return max(room, 0)

    async def _claim(self, limit):
        try:
            return await self.executor.db.claim(claims.claim_next, self.executor.worker_id, limit)
        except Exception:
            log.exception("claim failed; retrying")
            return []

    async def _sleep(self, stopping, timeout):
        """Until a NOTIFY, a freed slot, a stop, or ``timeout``."""
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


class Listener:
    """PostgreSQL LISTEN on a thread of its own: sets ``wake`` on the loop at
    each NOTIFY (and after each reconnect, to catch up on what it missed).
    Nothing on SQLite."""

    def __init__(self, wake):
        self.wake = wake
        self._stopping = threading.Event()
        self._thread = None
        self._delay = 0.5  # before reconnecting; doubles up to 10 s while it keeps failing

    def start(self):
        if connection.vendor != "postgresql":
            return
        loop = asyncio.get_running_loop()
        params = connection.get_connection_params()
        self._thread = threading.Thread(target=self._listen, args=(loop, params), name="listen", daemon=True)
        self._thread.start()

    async def stop(self):
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def _listen(self, loop, params):
        while not self._stopping.is_set():
            try:
                self._listen_once(loop, params)
            except Exception as error:
                if self._stopping.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", error, self._delay)
                self._stopping.wait(self._delay)
                self._delay = min(self._delay * 2, 10)

    def _listen_once(self, loop, params):
        """One LISTEN connection, until it breaks or we stop."""
        skip = ("cursor_factory", "context", "prepare_threshold", "pool")
        params = {key: value for key, value in params.items() if key not in skip}
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._delay = 0.5
            loop.call_soon_threadsafe(self.wake.set)  # catch up on what we missed
            while not self._stopping.is_set():
                for _ in conn.notifies(timeout=0.25, stop_after=1):
                    loop.call_soon_threadsafe(self.wake.set)
