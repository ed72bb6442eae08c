"""How a queued job is announced to workers: a leaf the jobs package calls.

It knows messages, not rows: the caller passes what each message carries and
learns which ids went out (the jobs side then marks them published).
"""

import logging
from typing import NamedTuple

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "llm_jobs"


class JobMessage(NamedTuple):
    """What a message says of a job: its id (the data), task and provider
    (attributes), and which topic it goes to. Never the prompt."""

    job_id: object
    task_id: int
    provider: str
    bulk: bool = False


def publish(messages):
    """Announce queued jobs. Never raises: a job whose message could not be
    sent stays unpublished and the daemon's repair sends it again.
    Returns the ids announced."""
    messages = list(messages)
    if not messages:
        return []
    try:
        if settings.JOB_TRANSPORT == "pubsub":
            from eval.queue import pubsub  # the client library loads only where it is used

            return pubsub.publish(messages)
        notify_workers()
        return [message.job_id for message in messages]
    except Exception:
        log.exception("could not publish %d job(s); the sync daemon will retry", len(messages))
        return []


def notify_workers():
    """db transport: wake idle workers at once on PostgreSQL (LISTEN/NOTIFY).
    Inside a transaction the notification is delivered at COMMIT."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
