"""How workers learn of jobs. The web side only needs ``publish_jobs``."""

import logging

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "llm_jobs"


def publish_jobs(job_ids):
    """Tell workers about queued jobs. Never raises: a job whose message
    could not be sent stays unpublished and the daemon republishes it.
    Returns how many were published."""
    job_ids = list(job_ids)
    if not job_ids:
        return 0
    try:
        if settings.JOB_TRANSPORT == "pubsub":
            from eval.transports.pubsub import publish

            return publish(job_ids)
        notify_workers()
        return len(job_ids)
    except Exception:
        log.exception("could not publish %d job(s); the sync daemon will retry", len(job_ids))
        return 0


def notify_workers():
    """db transport: wake idle workers at once on PostgreSQL (LISTEN/NOTIFY)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
