"""One pass of the daemon: the job engine's repairs first (eval/jobs/repairs.py
owns them: expired leases requeued or failed, lost messages republished, old
heartbeats pruned), then sync tasks from TASK_SOURCE (when set), fire the due
schedules of evaluation runs (eval/evaluation/schedules.py: each firing
once, even with several daemons), finish the runs whose jobs all ended and
settle the daily-budget reservations of the jobs and runs that ended
(eval/jobs/quota.py: each estimate replaced by what was spent);
last, the alert rules (eval/alerts/: evaluated on what the steps left, sends
within their own budget).

The repairs are urgent (a job whose worker died stays "running" until its
lease is repaired) and the sync may be slow, so they never wait behind it:
they run first, and while a sync runs, a round of them runs again whenever
``repair_every`` seconds (the daemon's interval) passed since the last
(the sync calls back between batches and while it waits for a URL). Each
step has its own budget: the repairs theirs (repairs.py), a URL sync
SYNC_FETCH_TIMEOUT_SECONDS and SYNC_FETCH_MAX_BYTES (eval/sync/fetch.py).

The repairs go again at once while a round did work and nothing failed,
within the time the daemon gives the pass (its interval): a backlog bigger
than one round's budgets drains now rather than one round per interval.
The sync runs once a pass (it reads the whole source), and so do the
schedules.

Every step runs even if an earlier one failed; the pass records the errors
and the daemon logs one line with its counts. Once a stop is asked, the
steps not yet begun are skipped (the daemon stops within about a second).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connections

from eval import alerts
from eval.evaluation.compare import scheduled as scheduled_gates
from eval.evaluation.runs import schedules
from eval.evaluation.runs import services as runs
from eval.jobs import quota, repairs
from eval.sync import SourceError, SyncInterrupted, SyncResult, sync_tasks

log = logging.getLogger(__name__)

SKIPPED_SHOWN = 5


def close_stale_connections():
    """Drop connections past CONN_MAX_AGE or broken (a database restart), as
    Django does around each request. Never inside a transaction (tests run a
    pass inside one; the daemon itself never does)."""
    if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        close_old_connections()


def _never():
    return False


@dataclass
class Pass:
    source: str = ""  # TASK_SOURCE; empty: no sync
    should_stop: Callable[[], bool] = _never
    repeat_for: float = 0.0  # seconds the repairs may go again while they do work
    repair_every: float = 0.0  # during a sync, a repair round once this long passed since the last (0: none)
    clock: Callable[[], float] = time.monotonic
    sync: SyncResult | None = None
    fired: int = 0  # schedule firings that launched a run
    refused: int = 0  # schedule firings refused (over max_cost_usd or the budget)
    regressed: int = 0  # firings that regressed against their dataset's baseline
    settled: int = 0  # budget reservations of ended jobs and runs settled to their cost
    requeued: int = 0
    failed: int = 0
    republished: int = 0
    pruned: int = 0
    repair_rounds: int = 0
    errors: list = field(default_factory=list)
    seconds: float = 0.0
    last_repair: float = 0.0  # clock() when the last repair round began

    @property
    def ok(self):
        return not self.errors

    def run(self):
        started = time.monotonic()
        close_stale_connections()
        try:
            again = self.repair_jobs()
            for step in (self.sync_tasks, self.fire_schedules, self.finish_runs, self.gate_firings):
                if self.should_stop():
                    break
                step()
            while again and self.may_go_again(started):
                again = self.repair_jobs()
            if not self.should_stop():
                self.check_alerts()
        finally:
            close_stale_connections()
        self.seconds = time.monotonic() - started
        return self

    def sync_tasks(self):
        """Sync the source; True when it wrote something."""
        if not self.source:
            return False
        try:
            self.sync = sync_tasks(self.source, should_stop=self.sync_checkpoint)
        except SyncInterrupted:
            self.errors.append("sync: interrupted by a stop request")
        except SourceError as error:
            self.errors.append(f"sync: {error}")
        except Exception as error:
            log.exception("sync failed")
            self.errors.append(f"sync: {type(error).__name__}: {error}")
        return self.sync is not None and self.sync.written > 0

    def sync_checkpoint(self):
        """The sync's should_stop, called between its batches and while it waits
        for a URL (never inside a transaction): runs a repair round when one is
        due, so a slow sync does not hold up expired leases."""
        if self.should_stop():
            return True
        if self.repair_every > 0 and self.clock() - self.last_repair >= self.repair_every:
            self.repair_jobs()
        return self.should_stop()

    def fire_schedules(self):
        """Launch the due scheduled runs; True when a firing was claimed."""
        try:
            firings = schedules.fire_due()
        except Exception as error:
            log.exception("schedules failed")
            self.errors.append(f"schedules: {type(error).__name__}: {error}")
            return False
        for firing in firings:
            self.fired += firing.child is not None
            self.refused += bool(firing.refused)
            if firing.error:
                self.errors.append(f"schedules: run {firing.parent_id}: {firing.error}")
        return bool(firings)

    def finish_runs(self):
        """Runs whose jobs have all ended become done, then what ended gives its
        budget reservation up for its real cost; True when either did something."""
        try:
            finished = runs.finish_ended()
            self.settled += quota.settle()
            return finished > 0 or self.settled > 0
        except Exception as error:
            log.exception("finishing runs failed")
            self.errors.append(f"runs: {type(error).__name__}: {error}")
            return False

    def gate_firings(self):
        """Done firings of schedules compared with their baselines (the alert step reads what they found)."""
        try:
            self.regressed += scheduled_gates.gate_finished()
        except Exception as error:
            log.exception("gating runs failed")
            self.errors.append(f"gates: {type(error).__name__}: {error}")

    def check_alerts(self):
        """The alert rules over the state the steps above left, then their sends (own budget: eval/alerts/step.py)."""
        try:
            return alerts.run_step(should_stop=self.should_stop).did_work
        except Exception as error:
            log.exception("alerts failed")
            self.errors.append(f"alerts: {type(error).__name__}: {error}")
            return False

    def repair_jobs(self):
        """One round of the job engine's repairs; True when it repaired something and no repair failed."""
        self.last_repair = self.clock()
        report = repairs.run_repairs(should_stop=self.should_stop)
        self.repair_rounds += 1
        self.requeued += report.requeued
        self.failed += report.failed
        self.republished += report.republished
        self.pruned += report.pruned
        self.errors.extend(report.errors)
        did_work = report.requeued + report.failed + report.republished + report.pruned > 0
        return did_work and not report.errors

    def may_go_again(self, started):
        return not self.should_stop() and time.monotonic() - started < self.repeat_for

    def line(self):
        if self.sync is not None:
            counts = " ".join(f"{key}={value}" for key, value in self.sync.counts().items())
            sync = f"sync {self.sync.source}: {counts}"
        else:
            sync = "sync: failed" if self.source else "sync: no TASK_SOURCE"
        rounds = f" in {self.repair_rounds} rounds" if self.repair_rounds > 1 else ""
        text = (
            f"pass: {sync}; {self.schedules_line()}leases requeued={self.requeued} failed={self.failed}; "
            f"republished={self.republished}; heartbeats pruned={self.pruned}{rounds}; {self.seconds:.2f} s"
        )
        if self.errors:
            text += "; errors: " + " | ".join(self.errors)
        return text

    def schedules_line(self):
        if not (self.fired or self.refused or self.regressed):
            return ""
        return f"schedules fired={self.fired} refused={self.refused} regressed={self.regressed}; "

    def log(self, logger):
        """The pass's line, then the records the sync skipped (a few, and how many more)."""
        (logger.info if self.ok else logger.warning)("%s", self.line())
        sync = self.sync
        if sync is None or not sync.invalid:
            return
        shown = "; ".join(f"{where}: {reason}" for where, reason in sync.skipped[:SKIPPED_SHOWN])
        more = sync.invalid - SKIPPED_SHOWN
        more = f" (and {more} more; see manage.py sync_tasks --dry-run)" if more > 0 else ""
        logger.warning("skipped %d invalid record(s): %s%s", sync.invalid, shown, more)


def run_pass(source=None, *, should_stop=None, repeat_for=0.0, repair_every=0.0):
    """One pass over ``source`` (default: TASK_SOURCE)."""
    source = settings.TASK_SOURCE if source is None else source
    return Pass(
        source=source or "", should_stop=should_stop or _never, repeat_for=repeat_for, repair_every=repair_every
    ).run()
