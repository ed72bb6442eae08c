"""Runs claimed jobs: many in flight on one asyncio loop.

The executor owns capacity (free slots, a semaphore per provider), starts one
task per claimed attempt and keeps the worker's counters. The rest lives in
its own module: an attempt's flow in attempt.py, final writes in writer.py,
progress, leases, cancels and the heartbeat in flusher.py. Transports only
deliver claimed jobs here and learn when each is settled.
"""

import asyncio
import functools
import logging
import os
import socket
import time
import uuid

from django.conf import settings
from django.utils import timezone

from coreproject import logformat
from eval.jobs import heartbeats
from eval.jobs.outcomes import Outcome, Settled
from eval.providers import available_providers, get_provider
from eval.worker.attempt import Attempt
from eval.worker.flusher import Flusher
from eval.worker.run_state import RunState, StopReason
from eval.worker.writer import Writer

log = logging.getLogger(__name__)


def new_worker_id():
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Executor:
    def __init__(self, *, database, worker_id=None, concurrency=None, transport_name="", one_off=False):
        self.db = database
        # A one-off drain (--once: load_demo, a script) is no worker anyone runs:
        # the dashboard forgets it when it ends instead of listing it offline.
        self.one_off = one_off
        self.worker_id = worker_id or new_worker_id()
        logformat.set_process_worker_id(self.worker_id)
        self.concurrency = concurrency or settings.WORKER_CONCURRENCY
        self.transport_name = transport_name
        self.running: dict = {}  # RunState.key -> RunState
        self.jobs_done = 0
        self.jobs_failed = 0
        self.jobs_finished = 0  # settled attempts of any kind, for --max-jobs
        self.slot_freed = asyncio.Event()
        self.started_at = timezone.now()
        self.writer = Writer(database, self.worker_id)
        self.flusher = Flusher(database=database, worker_id=self.worker_id, running=self.running, beat=self._beat)
        self._semaphores = {}

    # --- capacity ---------------------------------------------------------------------------
    @property
    def free_slots(self):
        # A job whose model call has ended only waits for its final write:
        # its slot goes to the next job at once, so the two overlap.
        busy = sum(1 for state in self.running.values() if not state.finishing)
        return max(0, self.concurrency - busy)

    def semaphore(self, provider):
        if provider.name not in self._semaphores:
            self._semaphores[provider.name] = asyncio.Semaphore(provider.max_concurrency)
        return self._semaphores[provider.name]

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self):
        for provider in available_providers():
            await provider.prepare()  # SDK imports and clients before the first claim
        await self.db.call(self._beat, initial=True)
        self.flusher.start()

    def start_job(self, job, on_settled=None):
        """Run a claimed job in the background; ``on_settled(job_id, Settled)`` at the end."""
        state = RunState(job, message=f"Waiting for {job.model}")
        self.running[state.key] = state
        state.task = asyncio.create_task(self._run(state, on_settled), name=f"job-{job.id}")
        return state.task

    async def drain(self, grace):
        """Wait up to ``grace`` s (None: as long as they take) for running jobs, then hand back the rest."""
        if self.running:
            log.info("waiting up to %s s for %d running job(s)", grace, len(self.running))
            await asyncio.wait([state.task for state in self.running.values()], timeout=grace)
        for state in list(self.running.values()):
            state.stop(StopReason.SHUTDOWN)
        if self.running:
            await asyncio.wait([state.task for state in self.running.values()], timeout=30)

    async def close(self):
        await self.flusher.stop()
        await self.writer.close()
        if self.one_off:
            await self.db.call(heartbeats.forget, self.worker_id)
        else:
            await self.db.call(self._beat, stopped=True)
        for name in list(self._semaphores):
            provider = get_provider(name)
            if provider is not None:
                await provider.aclose()

    # --- one job ------------------------------------------------------------------------------
    async def _run(self, state, on_settled):
        logformat.bind(job_id=state.job.id, worker_id=self.worker_id)  # on every line of this task
        started = time.monotonic()
        settled = Settled(Outcome.LOST)
        try:
            attempt = Attempt(
                state,
                worker_id=self.worker_id,
                write=functools.partial(self._final_write, state),
                semaphore=self.semaphore,
                db_call=self.db.call,
            )
            settled = await attempt.run()
        except Exception:  # never let one job take the worker down
            log.exception("job crashed the executor", extra={"job_id": state.job.id, "worker_id": self.worker_id})
        finally:
            self._settle(state, settled, time.monotonic() - started)
            if on_settled is not None:
                on_settled(state.job.id, settled)
        return settled

    async def _final_write(self, state, write):
        state.finishing = True  # too late to cancel: the outcome is being written
        self.slot_freed.set()
        return await self.writer.submit(write)

    def _settle(self, state, settled, duration):
        self.running.pop(state.key, None)
        self.jobs_finished += 1
        self.jobs_done += settled.outcome is Outcome.SUCCEEDED
        self.jobs_failed += settled.outcome is Outcome.FAILED
        self.slot_freed.set()
        state.record_metrics(settled.outcome, duration)

    def _beat(self, initial=False, stopped=False):
        """Write the heartbeat (on a database thread)."""
        heartbeats.beat(
            self.worker_id,
            jobs_done=self.jobs_done,
            jobs_failed=self.jobs_failed,
            in_flight=len(self.running),
            first=(self.transport_name, self.started_at) if initial else None,
            stopped=stopped,
        )
