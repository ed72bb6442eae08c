"""Repairs of what a crash or a lost message left behind, scheduled by the
daemon: expired leases requeued (or failed), queued jobs whose message was
never sent (or was lost) sent again, old worker heartbeats pruned.

Each step works in batches within its own time budget, so a big backlog in
one never holds up the others; what is left is done on the next pass. The
budget holds even when the broker hangs: a publish waits at most the time its
step has left, and the republish step stops at once when the broker refuses
or this process's breaker is open.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from eval import broker as queue
from eval.jobs import heartbeats, outbox, transitions

log = logging.getLogger(__name__)

STEP_BUDGET_SECONDS = 10.0
# Workers run expire_leases themselves this often (eval/worker/lease_repair.py).
WORKER_REPAIR_MAX_INTERVAL_SECONDS = 5.0
EXPIRE_BATCH = 500
REPUBLISH_BATCH = 200


@dataclass(frozen=True)
class Budget:
    """A step's time: it ends at ``deadline`` on ``clock`` (injected in tests)."""

    deadline: float
    clock: Callable[[], float] = time.monotonic

    def left(self):
        return self.deadline - self.clock()

    def spent(self):
        return self.left() <= 0


def worker_repair_interval():
    """How often a worker runs the lease repair: a quarter lease, at most
    WORKER_REPAIR_MAX_INTERVAL_SECONDS (a dead worker's jobs are queued again
    within that of their lease's end)."""
    return min(WORKER_REPAIR_MAX_INTERVAL_SECONDS, settings.JOB_LEASE_SECONDS / 4)


def expire_leases(budget):
    """Returns (requeued, failed)."""
    requeued = failed = 0
    while True:
        batch_requeued, batch_failed = transitions.expire_leases(limit=EXPIRE_BATCH)
        requeued, failed = requeued + batch_requeued, failed + batch_failed
        if batch_requeued < EXPIRE_BATCH or budget.spent():
            return requeued, failed


def republish(budget):
    """Returns how many messages were sent."""
    sent = 0
    while not budget.spent() and not queue.publishing_paused():
        due = outbox.due_for_republish(limit=REPUBLISH_BATCH)
        if not due:
            break
        # Never wait on the broker beyond the budget, however long it hangs.
        batch_sent = outbox.publish(due, timeout=min(settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS, budget.left()))
        sent += batch_sent
        # Stop when done, or when the broker refuses (the next pass tries again).
        if len(due) < REPUBLISH_BATCH or batch_sent == 0:
            break
    return sent


def prune_heartbeats(budget):
    return heartbeats.prune()


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Budget], object]
    # Runs even when a stop was asked: a lease left expired would strand a job until the next start.
    urgent: bool = False


STEPS = (
    Step("expire_leases", expire_leases, urgent=True),
    Step("republish", republish),
    Step("prune_heartbeats", prune_heartbeats),
)


@dataclass
class RepairReport:
    results: dict = field(default_factory=dict)  # step name -> what it returned
    errors: list = field(default_factory=list)

    @property
    def requeued(self):
        return (self.results.get("expire_leases") or (0, 0))[0]

    @property
    def failed(self):
        return (self.results.get("expire_leases") or (0, 0))[1]

    @property
    def republished(self):
        return self.results.get("republish") or 0

    @property
    def pruned(self):
        return self.results.get("prune_heartbeats") or 0


def run_repairs(*, budget=STEP_BUDGET_SECONDS, should_stop=None, clock=time.monotonic):
    """Run every step (each even if an earlier one failed), each within
    ``budget`` seconds; errors are logged and reported."""
    should_stop = should_stop or (lambda: False)
    report = RepairReport()
    for step in STEPS:
        if should_stop() and not step.urgent:
            break
        try:
            report.results[step.name] = step.run(Budget(clock() + budget, clock))
        except Exception as error:
            log.exception("%s failed", step.name)
            report.errors.append(f"{step.name}: {type(error).__name__}: {error}")
    return report
