"""Publishing job messages to Google Cloud Pub/Sub, and the names of its
topics and subscriptions (the worker's transport subscribes to them)."""

import logging
import os
import threading
import time
from concurrent.futures import wait

from django.conf import settings

log = logging.getLogger(__name__)

# Bulk jobs go through their own topic and subscription, so a backlog of
# thousands never sits in front of a reviewer's interactive job: each
# subscription has its own flow-control budget in the worker.
BULK_SUFFIX = "-bulk"

_publisher = None
_publisher_pid = None
_publisher_lock = threading.Lock()


def topic_path(bulk=False):
    from google.cloud import pubsub_v1  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

    name = settings.PUBSUB_TOPIC + (BULK_SUFFIX if bulk else "")
    return pubsub_v1.PublisherClient.topic_path(settings.PUBSUB_PROJECT_ID, name)


def subscription_path(name=None, bulk=False):
    from google.cloud import pubsub_v1  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

    name = (name or settings.PUBSUB_SUBSCRIPTION) + (BULK_SUFFIX if bulk else "")
    return pubsub_v1.SubscriberClient.subscription_path(settings.PUBSUB_PROJECT_ID, name)


def get_publisher():
    """One publisher client per process (it owns a gRPC channel and threads;
    a forked child makes its own: its parent's do not work across a fork)."""
    global _publisher, _publisher_pid
    with _publisher_lock:
        if _publisher is None or _publisher_pid != os.getpid():
            _publisher_pid = os.getpid()
            from google.cloud import pubsub_v1  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

            # One message per batch: a job id is tiny and latency matters more.
            _publisher = pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(max_messages=1, max_latency=0.001)
            )
        return _publisher


def reset_publisher():
    global _publisher
    with _publisher_lock:
        _publisher = None


def publish(messages, timeout):
    """Publish one message per job (eval.broker.JobMessage) and wait for them
    all together at most ``timeout`` seconds; returns the ids published.

    The deadline also bounds the client's own retries of the Publish call
    (by default they go on for 600 s in the background)."""
    deadline = time.monotonic() + timeout
    futures = {}
    for message in messages:
        future = _send(message, timeout)
        if future is not None:
            futures[future] = message.job_id
    done, _ = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    published, failed = [], []
    for future in futures:
        error = _error(future) if future in done else TimeoutError(f"no answer within {timeout:g} s")
        if error is None:
            published.append(futures[future])
        else:
            failed.append((futures[future], error))
    if failed:
        _warn_all(failed)
        # The client keeps a failed batch as its current one and refuses every
        # later publish to that topic ("Publish after stop() or publish error"):
        # start the next publish on a fresh client.
        reset_publisher()
    return published


def _error(future):
    try:
        future.result(timeout=0)
    except Exception as error:
        return error
    return None


def _retry(timeout):
    from google.api_core import exceptions, retry  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

    transient = retry.if_exception_type(
        exceptions.Aborted,
        exceptions.DeadlineExceeded,
        exceptions.InternalServerError,
        exceptions.ServiceUnavailable,
        exceptions.Unknown,
    )
    return retry.Retry(predicate=transient, initial=0.1, maximum=1.0, multiplier=2, timeout=timeout)


def _send(message, timeout, retry=True):
    """Hand one message to the client; a client that refuses is replaced once."""
    data = str(message.job_id).encode()
    attributes = {"task_id": str(message.task_id), "provider": message.provider}
    try:
        return get_publisher().publish(
            topic_path(bulk=bool(message.bulk)), data, retry=_retry(timeout), timeout=timeout, **attributes
        )
    except Exception as error:
        if not retry:
            _warn(message.job_id, error)
            return None
        reset_publisher()
        return _send(message, timeout, retry=False)


def _warn_all(failed):
    """One line for a batch (a broker that is down fails them all alike)."""
    if len(failed) == 1:
        _warn(*failed[0])
        return
    job_id, error = failed[0]
    log.warning(
        "publish failed for %d jobs (the first, job %s: %s: %s)",
        len(failed),
        job_id,
        type(error).__name__,
        str(error) or "(no message)",
    )


def _warn(job_id, error):
    # The exception's type too: a timeout's text is empty.
    log.warning(
        "publish failed for job %s: %s: %s",
        job_id,
        type(error).__name__,
        str(error) or "(no message)",
        extra={"job_id": job_id},
    )
