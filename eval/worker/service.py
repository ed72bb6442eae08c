"""The worker process: one asyncio loop, one executor, one transport."""

import asyncio
import logging
import signal

from django.conf import settings

from coreproject.gctuning import STREAMING_THRESHOLDS, tune_gc
from eval.transports import make_transport
from eval.worker.database import Database
from eval.worker.executor import Executor
from eval.worker.lease_repair import LeaseRepair

log = logging.getLogger(__name__)

STOP_RETRY_MARGIN_SECONDS = 5.0


async def serve(
    *, transport="db", concurrency=None, once=False, max_jobs=None, stopping=None, worker_id=None, own_process=False
):
    """Run until stopped (SIGTERM/SIGINT), or until --once/--max-jobs says so.

    On a stop: take no new work, let running jobs finish within
    WORKER_SHUTDOWN_GRACE_SECONDS, hand back the rest."""
    loop = asyncio.get_running_loop()
    stopping = stopping or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, _on_signal, stopping, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass

    database = Database(settings.WORKER_DB_THREADS)
    executor = Executor(
        database=database, concurrency=concurrency, transport_name=transport, worker_id=worker_id, one_off=once
    )
    await executor.start()
    if own_process:
        tune_gc(STREAMING_THRESHOLDS)
    log.info(
        "worker %s started: transport=%s concurrency=%d",
        executor.worker_id,
        transport,
        executor.concurrency,
        extra={"worker_id": executor.worker_id},
    )
    runner = make_transport(transport, executor, once=once, max_jobs=max_jobs)
    watch = asyncio.create_task(_bound_retries_on_stop(stopping, database), name="stop-watch")
    repair = LeaseRepair(database, on_requeued=runner.leases_requeued)
    repair.start()
    try:
        await runner.run(stopping)
        grace = settings.WORKER_SHUTDOWN_GRACE_SECONDS if stopping.is_set() else None
        await executor.drain(grace)
    finally:
        if executor.running:  # the transport failed: do not strand jobs
            await executor.drain(settings.WORKER_SHUTDOWN_GRACE_SECONDS)
        await repair.stop()
        await executor.close()
        watch.cancel()
        database.close()
        log.info(
            "worker %s stopped: %d done, %d failed",
            executor.worker_id,
            executor.jobs_done,
            executor.jobs_failed,
            extra={"worker_id": executor.worker_id},
        )
    return executor


async def _bound_retries_on_stop(stopping, database):
    """Once stopping, database retries end with the shutdown grace (plus a little for the last writes)."""
    await stopping.wait()
    database.stop_retrying_after(settings.WORKER_SHUTDOWN_GRACE_SECONDS + STOP_RETRY_MARGIN_SECONDS)


def _on_signal(stopping, signum):
    if not stopping.is_set():
        log.info("got %s: finishing running jobs, taking no new ones", signal.Signals(signum).name)
    stopping.set()
