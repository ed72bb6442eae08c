"""Create the Pub/Sub topic, subscription and dead-letter topic (idempotent)."""

import logging

from django.conf import settings

from eval.broker.pubsub import BULK_SUFFIX

log = logging.getLogger(__name__)


def ensure_resources(*, subscription=None, topic=None, ack_deadline_seconds=60):
    """Create what is missing; return a list of (resource, "created" | "exists")."""
    from google.api_core import exceptions  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)
    from google.cloud import pubsub_v1  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

    project = settings.PUBSUB_PROJECT_ID
    topic = topic or settings.PUBSUB_TOPIC
    subscription = subscription or settings.PUBSUB_SUBSCRIPTION
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    report = []
    try:
        dead_path = publisher.topic_path(project, settings.PUBSUB_DEAD_LETTER_TOPIC)
        _ensure_topic(publisher, dead_path, report, exceptions)
        # The interactive pair, then the bulk pair (eval/queue/pubsub.py).
        for suffix in ("", BULK_SUFFIX):
            topic_path = publisher.topic_path(project, topic + suffix)
            _ensure_topic(publisher, topic_path, report, exceptions)
            subscription_path = subscriber.subscription_path(project, subscription + suffix)
            request = {
                "name": subscription_path,
                "topic": topic_path,
                "ack_deadline_seconds": ack_deadline_seconds,
                "dead_letter_policy": {
                    "dead_letter_topic": dead_path,
                    "max_delivery_attempts": settings.PUBSUB_MAX_DELIVERY_ATTEMPTS,
                },
            }
            try:
                subscriber.create_subscription(request=request)
                report.append((subscription_path, "created"))
            except exceptions.AlreadyExists:
                report.append((subscription_path, "exists"))
    finally:
        subscriber.close()
    return report


def _ensure_topic(publisher, path, report, exceptions):
    try:
        publisher.create_topic(request={"name": path})
        report.append((path, "created"))
    except exceptions.AlreadyExists:
        report.append((path, "exists"))
