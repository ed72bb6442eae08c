"""Scheduled runs (DESIGN "Evaluation"): a cron expression on a run, in
TIME_ZONE, parsed by cronsim (never by hand). Each firing launches a child
run (parent = the scheduled one); the daemon calls fire_due() every pass.

Once each, whatever happens:
- Several daemons: a firing is claimed with one conditional UPDATE that
  moves next_run_at on, fenced by the value it had when read. Zero rows
  changed means another daemon claimed it; it is left alone.
- Downtime: the next firing is computed from now, not from the missed
  slot, so a daemon back after a day fires a missed schedule once, not
  once per missed slot.
- The claim, the child and its jobs commit together, so a crash before the
  commit leaves the firing due (it runs on the next pass) and a crash after
  leaves it done. The price: create_many's batches commit as one here, and
  their messages go out at that commit. A child that fails to launch is
  rolled back alone (a savepoint): the claim stands, so one bad run cannot
  fire on every pass; the error goes to the daemon's pass line.

A refused firing (over the run's max_cost_usd, or over its creator's daily
budget: the services refuse with a JobError) creates no child: it is
recorded on the scheduled run (refused_reason, refused_at) and logged at
WARNING. The next firing that launches clears them.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from eval.evaluation.errors import InvalidInput
from eval.evaluation.runs import services as runs
from eval.evaluation.runs.cron import next_firing
from eval.jobs.errors import JobError
from eval.models import Run

log = logging.getLogger(__name__)


@dataclass
class Firing:
    """What one claimed firing of a scheduled run did."""

    parent_id: int
    at: datetime  # the slot that was due
    child: Run | None = None  # the launched run
    refused: str = ""  # why it was refused (no child)
    error: str = ""  # an unexpected failure (no child)


def due(now):
    """Scheduled runs whose firing is due at ``now`` (run_due_idx)."""
    return Run.objects.filter(status=Run.Status.SCHEDULED, parent__isnull=True, next_run_at__lte=now).exclude(
        schedule=""
    )


def fire_due(now=None):
    """Fire every due schedule once; the firings this call claimed (the daemon's step).

    Runs with a schedule but no next_run_at are armed (their next firing set), not fired."""
    now = now or timezone.now()
    arm_unarmed(now)
    firings = []
    for parent in due(now).order_by("next_run_at", "pk"):
        firing = fire(parent, now)
        if firing is not None:
            firings.append(firing)
    return firings


def fire(parent, now):
    """Claim ``parent``'s due firing and launch it; None when another daemon claimed it."""
    try:
        upcoming = next_firing(parent.schedule, now)
    except InvalidInput as error:  # a bad expression saved around check() (the admin, SQL)
        upcoming = None
        reason = error.message
    else:
        reason = ""
    with transaction.atomic():
        if not _claim(parent, upcoming, now):
            return None
        firing = Firing(parent.pk, parent.next_run_at)
        if reason:
            firing.refused = reason
        else:
            _launch(parent, firing)
        _record(parent, firing, now)
    return firing


def _claim(parent, upcoming, now):
    """One conditional UPDATE: the firing read as due is ours only if no one moved it."""
    return (
        Run.objects.filter(pk=parent.pk, status=Run.Status.SCHEDULED, next_run_at=parent.next_run_at).update(
            next_run_at=upcoming, version=F("version") + 1, updated_at=now
        )
        == 1
    )


def _launch(parent, firing):
    """The child run, launched; a refusal or a failure rolls it back alone."""
    try:
        with transaction.atomic():
            firing.child = runs.launch(runs.child_of(parent), firing=True)
    except JobError as error:  # the services' refusals: over max_cost_usd, over the budget
        firing.child = None
        firing.refused = error.message
    except Exception as error:
        log.exception("schedule of run %s: the firing at %s failed", parent.pk, firing.at)
        firing.child = None
        firing.error = f"{type(error).__name__}: {error}"


def _record(parent, firing, now):
    """The refusal on the scheduled run (or its clearing after a launch), and the log line."""
    if firing.error:
        return
    if firing.refused:
        log.warning(
            "schedule of run %s (%s): the firing at %s was refused: %s",
            parent.pk,
            parent.name,
            firing.at,
            firing.refused,
        )
        changes = {"refused_reason": firing.refused, "refused_at": now}
    elif parent.refused_reason or parent.refused_at:
        changes = {"refused_reason": "", "refused_at": None}
    else:
        changes = {}
    if changes:
        Run.objects.filter(pk=parent.pk).update(**changes, version=F("version") + 1, updated_at=now)
    if firing.child is not None:
        log.info("schedule of run %s: fired run %s (due %s)", parent.pk, firing.child.pk, firing.at)


def arm_unarmed(now):
    """Set next_run_at on scheduled runs that have a schedule and none yet; how many.

    A bad expression (saved around check()) is recorded on the run once, as a refusal."""
    armed = 0
    unarmed = Run.objects.filter(status=Run.Status.SCHEDULED, parent__isnull=True, next_run_at__isnull=True)
    for run in unarmed.exclude(schedule=""):
        try:
            upcoming = next_firing(run.schedule, now)
        except InvalidInput as error:
            _refuse_once(run, error.message, now)
            continue
        if upcoming is not None:
            armed += Run.objects.filter(pk=run.pk, next_run_at__isnull=True).update(
                next_run_at=upcoming, version=F("version") + 1, updated_at=now
            )
    return armed


def _refuse_once(run, reason, now):
    changed = (
        Run.objects.filter(pk=run.pk)
        .exclude(refused_reason=reason)
        .update(refused_reason=reason, refused_at=now, version=F("version") + 1, updated_at=now)
    )
    if changed:
        log.warning("schedule of run %s (%s) never fires: %s", run.pk, run.name, reason)
