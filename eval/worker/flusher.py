"""The worker's once-a-second pass over every attempt in flight.

Streamed text is kept in memory; one pass writes the progress of every job
that changed in ONE statement (whatever the token rate), renews the leases of
the quiet ones, picks up cancel requests and, every few seconds, writes the
worker's heartbeat. A lost lease or a cancel request stops the attempt's task.

A job's streamed text is first written once it has streamed for a whole
interval: an answer that ends sooner goes from its claim ("Waiting for ...")
to its end with no write between, which the page, polling every 2 s, would
hardly have shown. At 1,000 one-second echo jobs in flight (bench/worker.py)
those writes were a third of the row updates; each pass updated ~1,000 rows
in 100-150 ms, holding the locks the jobs' final writes then waited for.
"""

import asyncio
import logging
import time

from django.conf import settings

from eval.jobs import batch, heartbeats
from eval.worker.run_state import StopReason

log = logging.getLogger(__name__)


class Flusher:
    """``running`` is the executor's {key: RunState}, read in place; ``beat()``
    writes the heartbeat (called on a database thread)."""

    def __init__(self, *, database, worker_id, running, beat):
        self.db = database
        self.worker_id = worker_id
        self.running = running
        self.beat = beat
        self.passes = 0
        self._last_heartbeat = 0.0
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._forever(), name="flusher")

    async def stop(self):
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _forever(self):
        interval = settings.WORKER_FLUSH_INTERVAL_MS / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:
                log.exception("flush failed; will retry")

    async def flush(self):
        """One pass. True if it wrote progress or leases or stopped an attempt."""
        now = time.monotonic()
        updates, renewals = self._collect(now)
        heartbeat = self._heartbeat_due(now)
        lost, cancels = await self.db.call(self._write, updates, renewals, heartbeat, bool(self.running))
        stopped = self._stop_lost(lost) + self._stop_cancelled(cancels)
        self.passes += 1
        return bool(updates or renewals or stopped)

    def _collect(self, now):
        """Progress to write (jobs that changed) and leases to renew (quiet jobs)."""
        renew_every = settings.JOB_LEASE_SECONDS / 3
        settle = settings.WORKER_FLUSH_INTERVAL_MS / 1000
        updates, renewals = [], []
        for state in list(self.running.values()):
            if state.finishing:
                continue  # its final write is on the way
            if state.progress_due(now, settle):
                state.dirty = False
                state.lease_renewed = now  # a progress write renews the lease too
                updates.append(state.progress_update())
            elif now - state.lease_renewed >= renew_every:
                state.lease_renewed = now
                renewals.append(state.key)
        return updates, renewals

    def _heartbeat_due(self, now):
        if now - self._last_heartbeat < heartbeats.INTERVAL_SECONDS:
            return False
        self._last_heartbeat = now
        return True

    def _write(self, updates, renewals, heartbeat, any_running):
        """On a database thread. Returns (keys of attempts whose lease is lost, ids asked to cancel)."""
        lost = set()
        if updates:
            gone = batch.record_progress(self.worker_id, updates)
            lost |= {(u.job_id, u.attempt) for u in updates if u.job_id in gone}
        if renewals:
            gone = batch.renew_leases(self.worker_id, renewals)
            lost |= {(job_id, attempt) for job_id, attempt in renewals if job_id in gone}
        cancels = batch.cancel_requests(self.worker_id) if any_running else set()
        if heartbeat:
            self.beat()
        return lost, cancels

    def _stop_lost(self, lost):
        stopped = 0
        for key in lost:
            state = self.running.get(key)
            if state is not None and state.stop(StopReason.LOST):
                log.warning("lease lost; abandoning the attempt", extra={"job_id": state.job.id})
                stopped += 1
        return stopped

    def _stop_cancelled(self, cancels):
        if not cancels:
            return 0
        states = [state for state in self.running.values() if state.job.id in cancels]
        return sum(state.stop(StopReason.CANCEL) for state in states)
