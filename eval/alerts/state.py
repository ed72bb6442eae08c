"""The alerts table's transitions: fire, repeat, resolve, and the notices each
one owes the channels.

Every transition is one UPDATE (or INSERT) fenced by the row as it was read:
its key (unique), its version and whether it was active. Of two daemons that
read the same state and decide the same thing (a failover overlap, a stand-by
that just took the lock), one changes the row and the other changes nothing,
so it owes nothing: an alert fires once, repeats at most every
ALERT_REPEAT_SECONDS, and resolves once. The notices are written in the same
transaction as the change, so what is owed is never lost with a crash; a
daemon claims a notice (claimed_until) before it sends it.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from eval.models import Alert, AlertNotice

log = logging.getLogger(__name__)

Kind, Channel, Outcome = AlertNotice.Kind, AlertNotice.Channel, AlertNotice.Outcome
GIVE_UP_AFTER = timedelta(days=1)  # a notice still failing after a day is dropped (and said so)
KEEP = timedelta(days=30)  # resolved alerts and finished notices are kept this long
DUE_BATCH = 50


@dataclass
class Changes:
    fired: list = field(default_factory=list)  # keys
    repeated: list = field(default_factory=list)
    resolved: list = field(default_factory=list)


def read_current(keys):
    """The rows the next apply() decides from: every active alert, and those named by ``keys``."""
    return {alert.key: alert for alert in Alert.objects.filter(Q(active=True) | Q(key__in=list(keys)))}


def apply(conditions, now, *, repeat_s, channels, current=None):
    """Move the table to ``conditions`` (all that hold at ``now``); what this call changed."""
    holding = {condition.key: condition for condition in conditions}
    current = read_current(holding) if current is None else current
    changes = Changes()
    for condition in conditions:
        alert = current.get(condition.key)
        if alert is None or not alert.active:
            if _fire(alert, condition, now, channels):
                changes.fired.append(condition.key)
        elif alert.notified_at <= now - timedelta(seconds=repeat_s):
            if _repeat(alert, condition, now, channels):
                changes.repeated.append(condition.key)
        elif alert.message != condition.message:
            Alert.objects.filter(pk=alert.pk, active=True).update(message=condition.message)
    for key, alert in current.items():
        if alert.active and key not in holding and _resolve(alert, now, channels):
            changes.resolved.append(key)
    return changes


def _fire(alert, condition, now, channels):
    values = {"message": condition.message, "since": min(condition.since, now), "notified_at": now}
    try:
        with transaction.atomic():
            if alert is None:  # a second INSERT of the key fails on its unique index
                alert = Alert.objects.create(key=condition.key, rule=condition.rule, active=True, **values)
            elif not _update(alert, was_active=False, active=True, resolved_at=None, **values):
                return False
            _owe(alert.pk, Kind.FIRING, f"FIRING {condition.key}: {condition.message}", now, channels)
    except IntegrityError:
        return False
    log.warning("alert firing: %s: %s", condition.key, condition.message)
    return True


def _repeat(alert, condition, now, channels):
    with transaction.atomic():
        if not _update(alert, was_active=True, message=condition.message, notified_at=now):
            return False
        text = f"STILL FIRING {alert.key} (since {alert.since:%Y-%m-%d %H:%M} UTC): {condition.message}"
        _owe(alert.pk, Kind.REPEAT, text, now, channels)
    log.warning("alert still firing: %s: %s", condition.key, condition.message)
    return True


def _resolve(alert, now, channels):
    with transaction.atomic():
        if not _update(alert, was_active=True, active=False, resolved_at=now):
            return False
        _owe(alert.pk, Kind.RESOLVED, f"RESOLVED {alert.key}: {alert.message}", now, channels)
    log.info("alert resolved: %s", alert.key)
    return True


def _update(alert, *, was_active, **values):
    """One UPDATE fenced by the row as read (version, active); True when it changed the row."""
    fence = Alert.objects.filter(pk=alert.pk, version=alert.version, active=was_active)
    return fence.update(version=F("version") + 1, **values) == 1


def _owe(alert_id, kind, text, now, channels):
    AlertNotice.objects.bulk_create(
        AlertNotice(alert_id=alert_id, kind=kind, channel=channel, text=text, created_at=now) for channel in channels
    )


def active_alerts():
    """The active alerts, oldest first (the dashboard and /api/status)."""
    return Alert.objects.filter(active=True).order_by("since", "key")


# --- delivery ------------------------------------------------------------------------


def due(now):
    """Notices owed and not being sent by anyone, oldest first."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    return list(AlertNotice.objects.filter(free, outcome=Outcome.PENDING).order_by("created_at", "id")[:DUE_BATCH])


def claim(notice, now, hold_s):
    """Take ``notice`` for one send; False when another daemon holds it or it is done."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    claimed = AlertNotice.objects.filter(free, pk=notice.pk, outcome=Outcome.PENDING).update(
        claimed_until=now + timedelta(seconds=hold_s), attempts=F("attempts") + 1
    )
    return claimed == 1


def sent(notice, now):
    AlertNotice.objects.filter(pk=notice.pk, outcome=Outcome.PENDING).update(
        outcome=Outcome.SENT, sent_at=now, claimed_until=None, last_error=""
    )


def failed(notice, error):
    """Free the notice for the next pass, with the reason (never a secret: notify.py words it)."""
    AlertNotice.objects.filter(pk=notice.pk, outcome=Outcome.PENDING).update(claimed_until=None, last_error=error[:300])


def drop(notice):
    AlertNotice.objects.filter(pk=notice.pk, outcome=Outcome.PENDING).update(
        outcome=Outcome.DROPPED, claimed_until=None, last_error="channel no longer configured"
    )


def tidy(now):
    """Drop notices that failed for a day (logged), forget what is a month old; how many were dropped."""
    stale = AlertNotice.objects.filter(outcome=Outcome.PENDING, created_at__lt=now - GIVE_UP_AFTER)
    dropped = stale.update(outcome=Outcome.DROPPED, claimed_until=None)
    if dropped:
        log.error("alerts: dropped %d notice(s) that could not be sent for a day", dropped)
    AlertNotice.objects.filter(created_at__lt=now - KEEP).exclude(outcome=Outcome.PENDING).delete()
    Alert.objects.filter(active=False, resolved_at__lt=now - KEEP).exclude(notices__outcome=Outcome.PENDING).delete()
    return dropped
