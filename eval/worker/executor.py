"""Runs claimed jobs: many in flight on one asyncio loop.

Streamed text is kept in memory and written by one flusher about once a
second for all jobs together (whatever the token rate); the same pass renews
leases, picks up cancel requests and writes the worker's heartbeat.
Transports only deliver claimed jobs here and learn when each is settled.
"""

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from coreproject import logformat
from eval import metrics
from eval.jobs import batch, heartbeats, transitions
from eval.jobs.claims import ClaimedJob
from eval.jobs.outcomes import Outcome, Settled
from eval.providers import available_providers, get_provider
from eval.providers.base import GenerationRequest
from eval.providers.errors import ProviderError
from eval.worker import provider_rate_limit

log = logging.getLogger(__name__)


def new_worker_id():
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class RunState:
    job: ClaimedJob
    parts: list = field(default_factory=list)
    tokens: int = 0
    message: str = ""
    dirty: bool = False
    generating_since: float | None = None
    lease_renewed: float = field(default_factory=time.monotonic)
    stop_reason: str = ""  # why we cancelled the task: cancel | shutdown | lost
    finishing: bool = False
    error_code: str = ""
    usage: tuple = (None, None, None)  # input tokens, output tokens, cost
    task: asyncio.Task | None = None
    claimed_at: object = field(default_factory=timezone.now)

    def on_text(self, delta, tokens_so_far):
        self.parts.append(delta)
        self.tokens = tokens_so_far
        self.dirty = True

    @property
    def output(self):
        return "".join(self.parts)

    def progress_update(self):
        max_tokens = max(self.job.max_tokens, 1)
        progress = min(99, self.tokens * 100 // max_tokens)
        message = self.message
        if self.generating_since is not None and self.tokens:
            elapsed = max(time.monotonic() - self.generating_since, 1e-3)
            left = (max_tokens - self.tokens) / (self.tokens / elapsed)
            message = f"Generating: {self.tokens} tokens, ~{left:.0f} s left at most"
        return batch.ProgressUpdate(self.job.id, self.job.attempt, progress, message, self.output, self.tokens)


class Executor:
    def __init__(self, *, database, worker_id=None, concurrency=None, transport_name=""):
        self.db = database
        self.worker_id = worker_id or new_worker_id()
        logformat.set_process_worker_id(self.worker_id)
        self.concurrency = concurrency or settings.WORKER_CONCURRENCY
        self.transport_name = transport_name
        # (job id, attempt) -> RunState: an attempt that is writing its end
        # may overlap the next attempt of the same job.
        self.running: dict = {}
        self.jobs_done = 0
        self.jobs_failed = 0
        self.jobs_finished = 0  # settled attempts of any kind, for --max-jobs
        self.slot_freed = asyncio.Event()
        self._semaphores = {}
        self._flusher = None
        self._pending_writes = []
        self._writer = None
        self._last_heartbeat = 0.0
        self.started_at = timezone.now()

    # --- capacity ---------------------------------------------------------------
    @property
    def free_slots(self):
        # A job whose model call has ended only waits for its final write:
        # its slot goes to the next job at once, so the two overlap.
        busy = sum(1 for state in self.running.values() if not state.finishing)
        return max(0, self.concurrency - busy)

    def _semaphore(self, provider):
        if provider.name not in self._semaphores:
            self._semaphores[provider.name] = asyncio.Semaphore(provider.max_concurrency)
        return self._semaphores[provider.name]

    # --- lifecycle of the executor -------------------------------------------------
    async def start(self):
        for provider in available_providers():
            await provider.prepare()  # SDK imports and clients before the first claim
        await self.db.call(self._write_heartbeat, initial=True)
        self._flusher = asyncio.create_task(self._flush_forever(), name="flusher")

    def start_job(self, job, on_settled=None):
        """Run a claimed job in the background; ``on_settled(job_id, Outcome)`` at the end."""
        state = RunState(job, message=f"Waiting for {job.model}")
        self.running[(job.id, job.attempt)] = state
        state.task = asyncio.create_task(self._run(state, on_settled), name=f"job-{job.id}")
        return state.task

    async def drain(self, grace):
        """Wait up to ``grace`` s for running jobs, then hand back the rest."""
        if self.running:
            log.info("waiting up to %.0f s for %d running job(s)", grace, len(self.running))
            await asyncio.wait([s.task for s in self.running.values()], timeout=grace)
        for state in self.running.values():
            if not state.finishing:
                state.stop_reason = "shutdown"
                state.task.cancel()
        if self.running:
            await asyncio.wait([s.task for s in self.running.values()], timeout=30)

    async def close(self):
        if self._flusher:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        await self.db.call(self._write_heartbeat, stopped=True)
        for name in list(self._semaphores):
            provider = get_provider(name)
            if provider is not None:
                await provider.aclose()

    # --- one job -----------------------------------------------------------------
    async def _run(self, state, on_settled):
        job = state.job
        logformat.bind(job_id=job.id, worker_id=self.worker_id)  # on every line of this task
        extra = {"job_id": job.id, "worker_id": self.worker_id, "attempt": job.attempt}
        started = time.monotonic()
        outcome = Settled(Outcome.LOST)
        try:
            outcome = await self._attempt(state, extra)
        except Exception:  # never let one job take the worker down
            log.exception("job crashed the executor", extra=extra)
        finally:
            self.running.pop((job.id, job.attempt), None)
            self.jobs_finished += 1
            if outcome.outcome is Outcome.SUCCEEDED:
                self.jobs_done += 1
            elif outcome.outcome is Outcome.FAILED:
                self.jobs_failed += 1
            self.slot_freed.set()
            self._observe(state, outcome, time.monotonic() - started)
            if on_settled is not None:
                on_settled(job.id, outcome)
        return outcome

    def _observe(self, state, outcome, duration):
        job = state.job
        waited = (state.claimed_at - job.queued_at).total_seconds() if job.queued_at else None
        tokens_in, tokens_out, cost = state.usage
        metrics.observe_job(
            job.provider,
            job.model,
            outcome.outcome.value,
            state.error_code or None,
            duration,
            waited,
            tokens_in,
            tokens_out if tokens_out is not None else (state.tokens or None),
            cost,
        )

    async def _attempt(self, state, extra):
        job = state.job
        provider = get_provider(job.provider)

        async def call(fn, **kwargs):
            state.finishing = True  # too late to cancel: the outcome is being written
            self.slot_freed.set()
            return await self._write(fn, (job.id, self.worker_id, job.attempt), kwargs)

        if provider is None:
            await call(
                transitions.fail,
                code="bad_request",
                message=f"provider {job.provider!r} is not configured on this worker",
            )
            return Settled(Outcome.FAILED)
        request = GenerationRequest(
            model=job.model,
            prompt=job.prompt,
            max_tokens=job.max_tokens,
            system=job.params.get("system", ""),
            temperature=job.params.get("temperature"),
        )
        try:

            def waiting(text, state=state):
                state.message, state.dirty = text, True

            # The shared per-provider rate limit, outside the job timeout: waiting
            # for a slot during a bulk run must not fail jobs as timed_out.
            await provider_rate_limit.acquire(job.provider, call=self.db.call, on_wait=waiting)
            async with asyncio.timeout(settings.JOB_TIMEOUT_SECONDS):
                async with self._semaphore(provider):
                    state.generating_since = time.monotonic()
                    state.message = f"Generating with {job.model}"
                    state.dirty = True
                    result = await provider.stream(request, state.on_text)
        except asyncio.CancelledError:
            return await self._stopped(state, call, extra)
        except TimeoutError:
            state.error_code = "timed_out"
            log.warning("job timed out", extra=extra)
            await call(
                transitions.fail,
                code="timed_out",
                message=f"The job ran past JOB_TIMEOUT_SECONDS ({settings.JOB_TIMEOUT_SECONDS:g} s)",
                output=state.output,
                output_tokens=state.tokens,
            )
            return Settled(Outcome.FAILED)
        except ProviderError as error:
            return await self._provider_error(state, error, call, extra)
        except Exception as error:  # an SDK or code error we did not map: retry, it may pass
            log.exception("unexpected error in provider call", extra=extra)
            error = ProviderError("server_error", f"Unexpected error: {type(error).__name__}")
            return await self._provider_error(state, error, call, extra)

        cost = provider.cost(job.model, result.input_tokens, result.output_tokens)
        state.usage = (result.input_tokens, result.output_tokens, cost)
        ok = await call(
            succeed_one,
            output=result.text,
            stop_reason=result.stop_reason,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost=cost,
        )
        if not ok:
            log.warning("finished a job this worker no longer holds; result dropped", extra=extra)
            return Settled(Outcome.LOST)
        log.info("job succeeded", extra=extra)
        return Settled(Outcome.SUCCEEDED)

    async def _stopped(self, state, call, extra):
        reason = state.stop_reason
        if reason == "cancel":
            await call(transitions.finish_cancel, output=state.output, output_tokens=state.tokens)
            log.info("job cancelled", extra=extra)
            return Settled(Outcome.CANCELLED)
        if reason == "shutdown":
            await call(transitions.hand_back)
            log.info("job handed back", extra=extra)
            return Settled(Outcome.HANDED_BACK)
        return Settled(Outcome.LOST)

    async def _provider_error(self, state, error, call, extra):
        job = state.job
        state.error_code = error.code
        if not error.transient:
            log.warning("job failed: %s", error.code, extra=extra)
            await call(
                transitions.fail,
                code=error.code,
                message=error.message,
                output=state.output,
                output_tokens=state.tokens,
            )
            return Settled(Outcome.FAILED)
        status, delay = await call(
            transitions.retry_later,
            code=error.code,
            message=error.message,
            retry_after=error.retry_after,
            max_attempts=job.max_attempts,
        )
        log.warning("transient error %s -> %s", error.code, status, extra=extra)
        if status == transitions.QUEUED:
            return Settled(Outcome.QUEUED, retry_at=time.monotonic() + delay)
        return Settled(Outcome.FAILED if status is not None else Outcome.LOST)

    # --- final writes, committed in groups ----------------------------------------------
    async def _write(self, fn, args, kwargs):
        """Queue one lifecycle write; writes that arrive together share one transaction."""
        future = asyncio.get_running_loop().create_future()
        self._pending_writes.append((fn, args, kwargs, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches(), name="writer")
        return await future

    async def _write_batches(self):
        while self._pending_writes:
            batch, self._pending_writes = self._pending_writes, []
            try:
                results = await self.db.call(_run_batch, [(fn, args, kwargs) for fn, args, kwargs, _ in batch])
            except Exception as error:
                results = [error] * len(batch)
            for (*_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    # --- the flusher ----------------------------------------------------------------
    async def _flush_forever(self):
        interval = settings.WORKER_FLUSH_INTERVAL_MS / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:
                log.exception("flush failed; will retry")

    async def flush(self):
        now = time.monotonic()
        renew_every = settings.JOB_LEASE_SECONDS / 3
        updates, renewals = [], []
        for state in list(self.running.values()):
            if state.finishing:
                continue  # its final write is on the way
            if state.dirty:
                state.dirty = False
                state.lease_renewed = now
                updates.append(state.progress_update())
            elif now - state.lease_renewed >= renew_every:
                state.lease_renewed = now
                renewals.append((state.job.id, state.job.attempt))
        heartbeat = now - self._last_heartbeat >= 5
        if heartbeat:
            self._last_heartbeat = now
        lost, cancels = await self.db.call(self._flush_sync, updates, renewals, heartbeat, bool(self.running))
        for key in lost:
            self._stop(self.running.get(key), "lost")
        for state in list(self.running.values()):
            if state.job.id in cancels:
                self._stop(state, "cancel")

    def _flush_sync(self, updates, renewals, heartbeat, any_running):
        lost = set()
        if updates:
            gone = batch.record_progress(self.worker_id, updates)
            lost |= {(u.job_id, u.attempt) for u in updates if u.job_id in gone}
        if renewals:
            gone = batch.renew_leases(self.worker_id, renewals)
            lost |= {(job_id, attempt) for job_id, attempt in renewals if job_id in gone}
        cancels = batch.cancel_requests(self.worker_id) if any_running else set()
        if heartbeat:
            self._write_heartbeat()
        return lost, cancels

    def _stop(self, state, reason):
        if state is None or state.task is None or state.stop_reason or state.finishing:
            return
        if reason == "lost":
            log.warning("lease lost; abandoning the attempt", extra={"job_id": state.job.id})
        state.stop_reason = reason
        state.task.cancel()

    def _write_heartbeat(self, initial=False, stopped=False):
        heartbeats.beat(
            self.worker_id,
            jobs_done=self.jobs_done,
            jobs_failed=self.jobs_failed,
            in_flight=len(self.running),
            first=(self.transport_name, self.started_at) if initial else None,
            stopped=stopped,
        )


def _run_batch(operations):
    """Run lifecycle writes in one transaction (one commit for many jobs);
    successes, the common case, share one statement. If a write raises a
    database error, run them one by one so the others land."""
    try:
        with transaction.atomic():
            return _run_grouped(operations)
    except (OperationalError, InterfaceError):
        raise  # the connection is gone: Database retries the whole batch
    except Exception:
        results = []
        for fn, args, kwargs in operations:
            try:
                results.append(fn(*args, **kwargs))
            except Exception as error:
                results.append(error)
        return results


def succeed_one(job_id, worker_id, attempt, **result):
    """A success as a write of its own (when grouping is not possible)."""
    return job_id in transitions.succeed(worker_id, [transitions.Success(job_id, attempt, **result)])


def _run_grouped(operations):
    """Successes that arrive together share ONE statement per worker."""
    successes = {}
    for fn, (job_id, worker_id, attempt), kwargs in operations:
        if fn is succeed_one:
            successes.setdefault(worker_id, []).append(transitions.Success(job_id, attempt, **kwargs))
    written = set()
    for worker_id, results in successes.items():
        written |= transitions.succeed(worker_id, results)
    return [args[0] in written if fn is succeed_one else fn(*args, **kwargs) for fn, args, kwargs in operations]
