"""The outbox: a queued job is announced to workers once the transaction that
queued it commits, and marked published when its message went out. Jobs
whose message was never sent, or was lost, are sent again by the daemon's
repair (repairs.py).

On the ``pubsub`` transport the announcement leaves the request: the ids go
to this process's background publisher (publisher.py), and the row with
``published_at`` NULL is the promise the daemon keeps if that publisher
cannot.

On the ``db`` transport the row itself is the message: it is "published" as
it commits (``published_at`` set at once) and a NOTIFY inside the same
transaction wakes idle workers (delivered at COMMIT: one round trip less).
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from eval import broker as queue
from eval.jobs import states
from eval.jobs.publisher import BackgroundPublisher
from eval.models import LLMJob

REPUBLISH_BATCH = 1000


def published_at_on_queue(now):
    """``published_at`` for a job (re)entering the queue: set at once on the
    db transport (committing is publishing), else left for the publisher."""
    return now if settings.JOB_TRANSPORT == "db" else None


def publish_on_commit(job_ids):
    """Announce jobs once the current transaction commits."""
    if settings.JOB_TRANSPORT == "db":
        queue.notify_workers()
    else:
        job_ids = list(job_ids)
        transaction.on_commit(lambda: background.submit(job_ids))


def publish(job_ids, timeout=None):
    """Send the jobs' messages now, waiting at most ``timeout`` seconds
    (default PUBSUB_PUBLISH_TIMEOUT_SECONDS), and mark the ones sent.
    Returns how many were sent."""
    rows = LLMJob.objects.filter(id__in=list(job_ids)).values_list("id", "task_id", "provider", "priority")
    messages = [
        queue.JobMessage(job_id, task_id, provider, bulk=priority < LLMJob.Priority.INTERACTIVE)
        for job_id, task_id, provider, priority in rows
    ]
    sent = queue.publish(messages, timeout=timeout)
    if sent:
        mark_published(sent)
    return len(sent)


def mark_published(job_ids, now=None):
    """The transport delivered these jobs' messages (not a visible change: no version bump)."""
    return LLMJob.objects.filter(id__in=job_ids, status=states.QUEUED).update(published_at=now or timezone.now())


def in_flight_seconds():
    """How long a job just queued may wait for its process's publisher before
    the daemon sends it instead: two publish deadlines (its turn, then its try)."""
    return 2 * settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS


def due_for_republish(now=None, limit=REPUBLISH_BATCH):
    """Queued jobs whose message was never published (and no longer in their
    process's publisher's hands), or published so long ago that it must have
    been lost (pubsub transport only)."""
    if settings.JOB_TRANSPORT != "pubsub":
        return []
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_REPUBLISH_AFTER_SECONDS)
    unsent = now - timedelta(seconds=in_flight_seconds())
    return list(
        LLMJob.objects.filter(status=states.QUEUED)
        .filter(Q(published_at__isnull=True, updated_at__lt=unsent) | Q(published_at__lt=stale, available_at__lt=stale))
        .order_by("-priority", "created_at")
        .values_list("id", flat=True)[:limit]
    )


# This process's background publisher (its thread starts on first use).
background = BackgroundPublisher(send=publish)
