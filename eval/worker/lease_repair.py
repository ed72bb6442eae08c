"""The worker's own lease repair: jobs of a dead worker run again soon after
their lease runs out, not at the daemon's next pass.

Every ``repairs.worker_repair_interval()`` seconds (a quarter of
JOB_LEASE_SECONDS, at most 5 s) the worker runs the engine's lease repair, the very
step the daemon schedules (eval/jobs/repairs.py: running jobs whose lease
ran out go back to the queue, or fail with no attempts left; one conditional
UPDATE, so workers and the daemon running it together change each row once).
When it requeued jobs, the transport is told at once: the db transport
claims them on its next turn, the pubsub one claims by id the jobs whose
lease it watches (pubsub_holds.py). The daemon's own pass
stays: with every worker dead, it is what requeues.
"""

import asyncio
import logging
import time

from eval.jobs import repairs

log = logging.getLogger(__name__)

BUDGET_SECONDS = 5.0  # one pass's time (the repair's batches stop when it is spent)


class LeaseRepair:
    """``on_requeued()`` is called on the loop after a pass that requeued jobs."""

    def __init__(self, database, on_requeued):
        self.db = database
        self.on_requeued = on_requeued
        self.requeued = 0
        self.failed = 0
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._forever(), name="lease-repair")

    async def stop(self):
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _forever(self):
        while True:
            await asyncio.sleep(repairs.worker_repair_interval())
            try:
                await self.repair()
            except Exception:
                log.exception("lease repair failed; will retry")

    async def repair(self):
        """One pass; returns (requeued, failed)."""
        budget = repairs.Budget(time.monotonic() + BUDGET_SECONDS)
        requeued, failed = await self.db.call(repairs.expire_leases, budget)
        self.requeued += requeued
        self.failed += failed
        if requeued:
            self.on_requeued()
        return requeued, failed
