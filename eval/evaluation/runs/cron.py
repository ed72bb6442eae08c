"""Cron expressions of scheduled runs (five fields, in TIME_ZONE), parsed by
cronsim, never by hand: what runs and run input need, apart from the firing
itself (schedules.py), so neither has to import the module that fires runs."""

import zoneinfo

from cronsim import CronSim, CronSimError
from django.conf import settings
from django.utils import timezone

from eval.evaluation.errors import InvalidInput

CRON_FIELDS = "minute hour day-of-month month day-of-week"


def check(expr):
    """``expr`` cleaned, or InvalidInput (field ``schedule``) with cronsim's reason.

    Five fields only: cronsim also takes a sixth (seconds), which would let a
    schedule fire every second."""
    expr = " ".join((expr or "").split())
    if len(expr.split()) != 5:
        raise InvalidInput(f"a schedule has five fields ({CRON_FIELDS}); got {expr!r}", field="schedule")
    try:
        CronSim(expr, _local(timezone.now()))
    except CronSimError as error:
        raise InvalidInput(f"bad schedule {expr!r}: {error}", field="schedule") from error
    return expr


def next_firing(expr, after):
    """The first firing of ``expr`` strictly after ``after`` (aware), in TIME_ZONE;
    None when it never fires again (cronsim stops after some years)."""
    expr = check(expr)
    try:
        return next(CronSim(expr, _local(after)))
    except StopIteration:
        return None


def _local(moment):
    if timezone.is_naive(moment):
        raise ValueError("schedules need aware datetimes")
    return moment.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE))
