"""How a queued job is announced to workers: a leaf the jobs package calls.

It knows messages, not rows: the caller passes what each message carries and
learns which ids went out (the jobs side then marks them published).

On the pubsub transport every publish has a deadline, and a circuit breaker
(breaker.py, one per process) stops publishing for a cool-down after a few
failures in a row, so a broker that is down costs a few deadlines, not one
per job.
"""

import logging
import threading
from typing import NamedTuple

from django.conf import settings
from django.db import connection

from eval.broker.breaker import CircuitBreaker

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "llm_jobs"
BREAKER_FAILURES = 3  # failed publishes in a row that open the breaker

_breaker = None
_breaker_lock = threading.Lock()


class JobMessage(NamedTuple):
    """What a message says of a job: its id (the data), task and provider
    (attributes), and which topic it goes to. Never the prompt."""

    job_id: object
    task_id: int
    provider: str
    bulk: bool = False


def publish(messages, *, timeout=None):
    """Announce queued jobs, waiting at most ``timeout`` seconds (default
    PUBSUB_PUBLISH_TIMEOUT_SECONDS). Never raises: a job whose message could
    not be sent stays unpublished and the daemon's repair sends it again.
    Returns the ids announced (none while the breaker is open)."""
    messages = list(messages)
    if not messages:
        return []
    if settings.JOB_TRANSPORT != "pubsub":
        return _notify(messages)
    if not breaker().allows():
        return []
    try:
        from eval.broker import pubsub  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where a job is published to it)

        sent = pubsub.publish(messages, timeout=timeout or settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS)
    except Exception as error:
        log.warning("could not publish %d job(s) (%s: %s); the daemon will retry", len(messages), _name(error), error)
        sent = []
    # Nothing sent is the broker failing; a partial send still shows it up.
    (breaker().succeeded if sent else breaker().failed)()
    return sent


def _notify(messages):
    try:
        notify_workers()
    except Exception as error:
        log.warning("could not notify workers (%s: %s); they poll anyway", _name(error), error)
    return [message.job_id for message in messages]


def publishing_paused():
    """The breaker is open: a publish now would not be tried."""
    return settings.JOB_TRANSPORT == "pubsub" and breaker().is_open


def breaker():
    """This process's circuit breaker (made on first use, from the settings)."""
    global _breaker
    with _breaker_lock:
        if _breaker is None:
            _breaker = CircuitBreaker(
                failures=BREAKER_FAILURES, cooldown_seconds=settings.PUBSUB_BREAKER_COOLDOWN_SECONDS
            )
        return _breaker


def reset_breaker(new=None):
    """Forget the breaker's state (tests; ``new`` injects one with its own clock)."""
    global _breaker
    with _breaker_lock:
        _breaker = new


def _name(error):
    return type(error).__name__


def notify_workers():
    """db transport: wake idle workers at once on PostgreSQL (LISTEN/NOTIFY).
    Inside a transaction the notification is delivered at COMMIT."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
