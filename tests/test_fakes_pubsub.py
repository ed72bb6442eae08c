"""The real google-cloud-pubsub client against our in-process gRPC fake and the official emulator.

These tests pin down the behaviour the job transport relies on, so a change in
the client library or the fakes shows up here first. No database is used.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from tests.fakes.pubsub_emulator import PubSubEmulator, find_emulator
from tests.fakes.pubsub_grpc import FakePubSubServer

PROJECT = "test-project"
FLOW = pubsub_v1.types.FlowControl(max_messages=10)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class PubSub:
    """Clients bound to one topic and subscription; shut down in the safe order."""

    publisher: pubsub_v1.PublisherClient
    subscriber: pubsub_v1.SubscriberClient
    topic: str
    subscription: str
    futures: list = field(default_factory=list)

    @classmethod
    def connect(cls, suffix: str = "") -> PubSub:
        # PUBSUB_EMULATOR_HOST must already be set: the clients read it when built.
        assert os.environ.get("PUBSUB_EMULATOR_HOST")
        batch = pubsub_v1.types.BatchSettings(max_messages=1)  # no 10 ms batching wait
        publisher = pubsub_v1.PublisherClient(batch_settings=batch)
        subscriber = pubsub_v1.SubscriberClient()
        name = f"jobs-{suffix}{uuid.uuid4().hex[:8]}"
        topic = publisher.topic_path(PROJECT, name)
        subscription = subscriber.subscription_path(PROJECT, name + "-worker")
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)
        return cls(publisher, subscriber, topic, subscription)

    def subscribe(self, callback):
        future = self.subscriber.subscribe(self.subscription, callback=callback, flow_control=FLOW)
        self.futures.append(future)
        return future

    def close(self) -> None:
        for future in self.futures:
            future.cancel()
            try:
                future.result(timeout=10)
            except Exception:  # a callback error already failed it; the stream is closed either way
                pass
        self.publisher.stop()
        self.subscriber.close()


@pytest.fixture
def fake(monkeypatch):
    server = FakePubSubServer(deadline_scale=0.1)  # the client's 10 s minimum deadline lasts 1 s
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.start())
    yield server
    server.stop()


@pytest.fixture
def pubsub(fake):
    threads_before = set(threading.enumerate())
    clients = PubSub.connect()
    yield clients
    clients.close()
    fake.stop()  # before the thread check; stopping twice is harmless
    leaked = lambda: [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]  # noqa: E731
    assert wait_for(lambda: not leaked(), timeout=15), f"threads left behind: {leaked()}"


# --------------------------------------------------------------- gRPC fake


def test_publish_receive_ack(pubsub, fake):
    received = {}
    done = threading.Event()

    def callback(message):
        received[message.data.decode()] = dict(message.attributes)
        message.ack()
        if len(received) == 20:
            done.set()

    pubsub.subscribe(callback)
    ids = [
        pubsub.publisher.publish(pubsub.topic, f"job-{i}".encode(), task_id=str(i), provider="echo").result(5)
        for i in range(20)
    ]
    assert done.wait(10)
    assert received == {f"job-{i}": {"task_id": str(i), "provider": "echo"} for i in range(20)}
    assert wait_for(lambda: fake.acked == 20)  # acks travel as separate unary calls, a little later
    assert fake.published == 20
    assert fake.acked_ids == set(ids)
    assert all(fake.delivered[i] == 1 for i in ids)
    assert fake.outstanding(pubsub.subscription) == (0, 0)


def test_unacked_message_is_redelivered_after_scaled_deadline(pubsub, fake):
    deliveries = []  # monotonic receive times

    def callback(message):
        deliveries.append(time.monotonic())
        if len(deliveries) >= 2:
            message.ack()  # the first delivery is held without ack or nack

    pubsub.subscribe(callback)
    message_id = pubsub.publisher.publish(pubsub.topic, b"slow").result(5)
    assert wait_for(lambda: len(deliveries) >= 2, timeout=15)
    gap = deliveries[1] - deliveries[0]
    # The receipt modack asks for 10 s (1 s scaled); a lease extension that lands
    # inside that second pushes it out once more, so allow some slack above 1 s.
    assert 0.8 <= gap < 8, gap
    assert wait_for(lambda: fake.acked == 1)
    assert fake.delivered[message_id] >= 2
    assert fake.nacked == 0


def test_nacked_message_is_redelivered_at_once(pubsub, fake):
    fake.deadline_scale = 0.5  # a 5 s ack deadline: "at once" stays far below it on a busy box
    deliveries = []

    def callback(message):
        deliveries.append(time.monotonic())
        if len(deliveries) == 1:
            message.nack()
        else:
            message.ack()

    pubsub.subscribe(callback)
    message_id = pubsub.publisher.publish(pubsub.topic, b"retry-me").result(5)
    assert wait_for(lambda: len(deliveries) >= 2)
    assert deliveries[1] - deliveries[0] < 2.5  # far below the 5 s scaled deadline
    assert wait_for(lambda: fake.acked == 1)
    assert fake.nacked == 1
    assert fake.delivered[message_id] == 2


def test_injected_publish_failure_surfaces_from_future(pubsub, fake):
    fake.fail_next_publish(1, code=grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(gexc.PermissionDenied):
        pubsub.publisher.publish(pubsub.topic, b"denied").result(10)
    assert fake.publish_calls == 1
    assert fake.published == 0


def test_unavailable_publish_is_retried_by_the_client(pubsub, fake):
    fake.fail_next_publish(2)  # UNAVAILABLE by default: the client retries with backoff
    assert pubsub.publisher.publish(pubsub.topic, b"eventually").result(10)
    assert fake.publish_calls == 3
    assert fake.published == 1


def test_publish_right_after_a_failed_full_batch_raises_assertion_error(pubsub, fake):
    """Client quirk (googleapis/python-pubsub#48, still in 2.44): when a batch fills up
    (max_messages=1 fills it at once) and its commit fails, the sequencer keeps the failed
    batch as current until the max_latency commit timer clears it. publish() meanwhile
    raises AssertionError("Publish after stop() or publish error.") synchronously."""
    settings = pubsub_v1.types.BatchSettings(max_messages=1, max_latency=2.0)  # a wide window, even on a busy box
    publisher = pubsub_v1.PublisherClient(batch_settings=settings)
    try:
        fake.fail_next_publish(1, code=grpc.StatusCode.PERMISSION_DENIED)
        with pytest.raises(gexc.PermissionDenied):
            publisher.publish(pubsub.topic, b"denied").result(10)
        with pytest.raises(AssertionError, match="publish error"):
            publisher.publish(pubsub.topic, b"too soon")
        # After max_latency the timer drops the failed batch (a busy box may fire it late).
        deadline = time.monotonic() + 2.0 + 10
        while True:
            try:
                later = publisher.publish(pubsub.topic, b"later")
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the failed batch was never dropped"
                time.sleep(0.1)
        assert later.result(10)
    finally:
        publisher.stop()


def test_publish_raw_injects_malformed_message(pubsub, fake):
    received = []
    pubsub.subscribe(lambda m: (received.append((m.data, dict(m.attributes))), m.ack()))
    fake.publish_raw(pubsub.subscription, b"\xff not a uuid", {"provider": "nope"})
    assert wait_for(lambda: received)
    assert received == [(b"\xff not a uuid", {"provider": "nope"})]
    assert wait_for(lambda: fake.acked == 1)


def test_dead_letter_policy_forwards_after_max_attempts(pubsub, fake):
    dead_topic = pubsub.topic + "-dead"
    dead_sub = pubsub.subscription + "-dead"
    pubsub.publisher.create_topic(name=dead_topic)
    pubsub.subscriber.create_subscription(name=dead_sub, topic=dead_topic)
    policy_sub = pubsub.subscription + "-dlq"
    policy = pubsub_v1.types.DeadLetterPolicy(dead_letter_topic=dead_topic, max_delivery_attempts=5)
    pubsub.subscriber.create_subscription(
        request={"name": policy_sub, "topic": pubsub.topic, "dead_letter_policy": policy}
    )
    attempts, dead = [], []

    def always_nack(message):
        attempts.append(message.delivery_attempt)
        message.nack()

    pubsub.futures.append(pubsub.subscriber.subscribe(policy_sub, callback=always_nack, flow_control=FLOW))
    pubsub.futures.append(pubsub.subscriber.subscribe(dead_sub, callback=lambda m: (dead.append(m.data), m.ack())))
    pubsub.publisher.publish(pubsub.topic, b"poison").result(5)
    assert wait_for(lambda: dead == [b"poison"])
    assert attempts == [1, 2, 3, 4, 5]


def test_invalid_names_are_rejected_like_the_emulator(pubsub):
    with pytest.raises(gexc.InvalidArgument):
        pubsub.publisher.create_topic(name=f"projects/{PROJECT}/topics/t")
    with pytest.raises(gexc.AlreadyExists):
        pubsub.publisher.create_topic(name=pubsub.topic)
    with pytest.raises(gexc.NotFound):
        pubsub.publisher.get_topic(topic=f"projects/{PROJECT}/topics/missing")


# ---------------------------------------------------------- official emulator


@pytest.fixture(scope="module")
def emulator():
    if find_emulator() is None:
        reason = "Pub/Sub emulator not installed (Debian package google-cloud-cli-pubsub-emulator, needs Java)"
        if os.environ.get("REQUIRE_PUBSUB_EMULATOR") == "1":
            pytest.fail(reason + " and REQUIRE_PUBSUB_EMULATOR=1")
        pytest.skip(reason)
    with PubSubEmulator() as running:
        yield running


@pytest.mark.pubsub
def test_emulator_round_trip(emulator, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    pubsub = PubSub.connect("emu-")
    try:
        sent = {str(uuid.uuid4()): {"task_id": str(i), "provider": "echo"} for i in range(50)}
        received = {}
        lock = threading.Lock()
        done = threading.Event()

        def callback(message):
            with lock:
                received[message.data.decode()] = dict(message.attributes)
                if len(received) == len(sent):
                    done.set()
            message.ack()

        pubsub.subscribe(callback)
        futures = [pubsub.publisher.publish(pubsub.topic, job_id.encode(), **attrs) for job_id, attrs in sent.items()]
        assert len({f.result(10) for f in futures}) == 50
        assert done.wait(20), f"received {len(received)} of 50"
        assert received == sent
    finally:
        pubsub.close()


@pytest.mark.pubsub
def test_emulator_rejects_short_topic_id(emulator, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    publisher = pubsub_v1.PublisherClient()
    try:
        with pytest.raises(gexc.InvalidArgument):
            publisher.create_topic(name=f"projects/{PROJECT}/topics/t")
    finally:
        publisher.stop()
