"""Workers' heartbeats: written by each worker, read by the dashboard, the
status API and /metrics, pruned by the daemon. "Online" is decided here only."""

import os
import socket
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from eval.models import WorkerHeartbeat

# A worker writes its heartbeat every INTERVAL_SECONDS (eval/worker/flusher.py);
# four missed beats and it is offline.
INTERVAL_SECONDS = 5
MISSED_BEATS = 4
ONLINE_SECONDS = INTERVAL_SECONDS * MISSED_BEATS
RETENTION = timedelta(days=1)
LIST_HOURS = 24


def online_filter(now=None):
    now = now or timezone.now()
    return Q(stopped_at__isnull=True, last_seen__gte=now - timedelta(seconds=ONLINE_SECONDS))


def is_online(heartbeat, now=None):
    now = now or timezone.now()
    return heartbeat.stopped_at is None and heartbeat.last_seen >= now - timedelta(seconds=ONLINE_SECONDS)


def online_count(now=None):
    return WorkerHeartbeat.objects.filter(online_filter(now)).count()


def recent(now=None, limit=100):
    """Running workers and those that stopped in the last day, newest first."""
    now = now or timezone.now()
    since = now - timedelta(hours=LIST_HOURS)
    return WorkerHeartbeat.objects.filter(Q(stopped_at__isnull=True) | Q(last_seen__gte=since)).order_by("-last_seen")[
        :limit
    ]


def beat(worker_id, *, jobs_done, jobs_failed, in_flight, first=None, stopped=False):
    """Write a worker's heartbeat. ``first`` = (transport name, started_at) on
    the worker's first beat, which creates the row."""
    now = timezone.now()
    values = {"last_seen": now, "jobs_done": jobs_done, "jobs_failed": jobs_failed, "in_flight": in_flight}
    if stopped:
        values["stopped_at"] = now
    if first is None:
        rows = WorkerHeartbeat.objects.filter(worker_id=worker_id)
        if not stopped:
            # A beat from a flush still on a database thread when the worker stopped must
            # not overwrite the final one (its counts are older; the stop's are whole).
            rows = rows.filter(stopped_at__isnull=True)
        rows.update(**values)
        return
    transport, started_at = first
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults=values,
        create_defaults={
            **values,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "transport": transport,
            "started_at": started_at,
        },
    )


def forget(worker_id):
    """A one-off drain that ended cleanly leaves no row behind."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


def prune(now=None):
    """Forget workers not seen for a day. Returns how many rows went."""
    now = now or timezone.now()
    deleted, _ = WorkerHeartbeat.objects.filter(last_seen__lt=now - RETENTION).delete()
    return deleted
