"""Publishing job messages to Google Cloud Pub/Sub, and the names of its
topics and subscriptions (the worker's transport subscribes to them)."""

import logging
import threading

from django.conf import settings

log = logging.getLogger(__name__)

# Bulk jobs go through their own topic and subscription, so a backlog of
# thousands never sits in front of a reviewer's interactive job: each
# subscription has its own flow-control budget in the worker.
BULK_SUFFIX = "-bulk"

_publisher = None
_publisher_lock = threading.Lock()


def topic_path(bulk=False):
    from google.cloud import pubsub_v1

    name = settings.PUBSUB_TOPIC + (BULK_SUFFIX if bulk else "")
    return pubsub_v1.PublisherClient.topic_path(settings.PUBSUB_PROJECT_ID, name)


def subscription_path(name=None, bulk=False):
    from google.cloud import pubsub_v1

    name = (name or settings.PUBSUB_SUBSCRIPTION) + (BULK_SUFFIX if bulk else "")
    return pubsub_v1.SubscriberClient.subscription_path(settings.PUBSUB_PROJECT_ID, name)


def get_publisher():
    """One publisher client per process (it owns a gRPC channel and threads)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            from google.cloud import pubsub_v1

            # One message per batch: a job id is tiny and latency matters more.
            _publisher = pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(max_messages=1, max_latency=0.001)
            )
        return _publisher


def reset_publisher():
    global _publisher
    with _publisher_lock:
        _publisher = None


def publish(messages, timeout=10.0):
    """Publish one message per job (eval.queue.JobMessage); returns the ids published."""
    futures = []
    for message in messages:
        future = _send(message)
        if future is not None:
            futures.append((message.job_id, future))
    published = []
    for job_id, future in futures:
        try:
            future.result(timeout=timeout)
            published.append(job_id)
        except Exception as error:
            _warn(job_id, error)
            # The client keeps a failed batch as its current one and refuses every
            # later publish to that topic ("Publish after stop() or publish error"):
            # start the next publish on a fresh client.
            reset_publisher()
    return published


def _send(message, retry=True):
    """Hand one message to the client; a client that refuses is replaced once."""
    data = str(message.job_id).encode()
    attributes = {"task_id": str(message.task_id), "provider": message.provider}
    try:
        return get_publisher().publish(topic_path(bulk=bool(message.bulk)), data, **attributes)
    except Exception as error:
        if not retry:
            _warn(message.job_id, error)
            return None
        reset_publisher()
        return _send(message, retry=False)


def _warn(job_id, error):
    log.warning("publish failed for job %s: %s", job_id, error, extra={"job_id": job_id})
