"""The pubsub transport end to end on the official emulator, and its faults on the gRPC fake."""

import asyncio
import uuid
import warnings
from datetime import timedelta

import grpc
import pytest
from django.core.management import call_command
from django.utils import timezone
from google.cloud import pubsub_v1

from eval.broker import pubsub
from eval.jobs import create, outbox, transitions
from eval.models import JobStatus, LLMJob
from eval.models import LLMJob as Job
from eval.worker.service import serve
from tests.fakes.pubsub_grpc import FakePubSubServer
from tests.helpers import use_pubsub

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pubsub]


def use_pubsub_set_up(settings, monkeypatch, host):
    use_pubsub(settings, monkeypatch, host)
    call_command("pubsub_setup", "--ack-deadline", "10")


@pytest.fixture
def on_emulator(pubsub_emulator, settings, monkeypatch, fast_jobs):
    use_pubsub_set_up(settings, monkeypatch, pubsub_emulator.host)
    yield settings
    outbox.background.flush(30)  # a requeue's publish never outlives its test
    pubsub.reset_publisher()


def queue(task, **kw):
    """Create a job and let this process's background publisher try it."""
    job, _ = create.create_job(task=task, provider="echo", model="echo", **kw)
    assert outbox.background.flush(30)
    return LLMJob.objects.get(pk=job.pk)


def pull_all(settings, max_messages=50):
    subscriber = pubsub_v1.SubscriberClient()
    try:
        request = {"subscription": pubsub.subscription_path(), "max_messages": max_messages, "return_immediately": True}
        with warnings.catch_warnings():  # return_immediately is deprecated, yet the way to not wait
            warnings.simplefilter("ignore", DeprecationWarning)
            return list(subscriber.pull(request=request, timeout=5).received_messages)
    finally:
        subscriber.close()


def test_jobs_are_published_after_commit_and_run_to_success(on_emulator, make_task):
    jobs = [queue(make_task(prompt=f"hi {i}")) for i in range(5)]
    assert all(job.published_at is not None for job in jobs)  # set once the message was accepted
    asyncio.run(serve(transport="pubsub", once=True, concurrency=4))
    for i, job in enumerate(jobs):
        done = LLMJob.objects.get(pk=job.pk)
        assert (done.status, done.output, done.attempts) == (JobStatus.SUCCEEDED, f"hi {i}", 1)
    assert pull_all(on_emulator) == []  # every message acked


def test_message_carries_only_the_id_and_attributes(on_emulator, make_task):
    job = queue(make_task(prompt="secret prompt text"))
    (received,) = pull_all(on_emulator)
    assert received.message.data.decode() == str(job.pk)
    assert dict(received.message.attributes) == {"task_id": str(job.task_id), "provider": "echo"}


def test_a_duplicate_message_never_starts_a_second_call(on_emulator, make_task):
    job = queue(make_task(prompt="one two three"))
    assert outbox.publish([job.pk]) == 1 and outbox.publish([job.pk]) == 1  # three messages, one job
    asyncio.run(serve(transport="pubsub", once=True, concurrency=4))
    done = LLMJob.objects.get(pk=job.pk)
    assert (done.status, done.attempts) == (JobStatus.SUCCEEDED, 1)  # claimed once: one model call
    assert pull_all(on_emulator) == []


def test_malformed_and_unknown_messages_are_acked_and_logged(on_emulator, make_task, caplog):
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(pubsub.topic_path(), b"\xffnot a job").result(timeout=10)
    publisher.publish(pubsub.topic_path(), str(uuid.uuid4()).encode()).result(timeout=10)
    job = queue(make_task(prompt="still works"))
    asyncio.run(serve(transport="pubsub", once=True))
    assert LLMJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    assert "malformed message" in caplog.text
    assert pull_all(on_emulator) == []


def test_a_cancelled_queued_job_message_is_acked_without_a_call(on_emulator, make_task):
    job = queue(make_task())
    transitions.request_cancel(job.pk, by="alice")
    asyncio.run(serve(transport="pubsub", once=True))
    assert LLMJob.objects.get(pk=job.pk).attempts == 0
    assert pull_all(on_emulator) == []


def test_a_publish_failure_leaves_the_job_queued_then_republished(settings, monkeypatch, fast_jobs, make_task):

    with FakePubSubServer(deadline_scale=0.1) as fake:
        use_pubsub_set_up(settings, monkeypatch, fake.host)
        fake.fail_next_publish(1, code=grpc.StatusCode.PERMISSION_DENIED)
        job = queue(make_task(prompt="try again"))
        assert job.status == JobStatus.QUEUED and job.published_at is None
        later = timezone.now() + timedelta(minutes=1)  # once its process's publisher has given up
        assert outbox.due_for_republish(now=later) == [job.pk]
        assert outbox.publish(outbox.due_for_republish(now=later)) == 1
        assert LLMJob.objects.get(pk=job.pk).published_at is not None
        asyncio.run(serve(transport="pubsub", once=True))
        assert LLMJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
        pubsub.reset_publisher()


def test_pubsub_setup_is_idempotent(on_emulator, capsys):
    call_command("pubsub_setup")
    out = capsys.readouterr().out
    assert out.count("exists") == 5 and "created" not in out  # dead letter + 2 topics + 2 subscriptions


def test_bulk_jobs_wait_behind_interactive_ones_on_their_own_subscription(on_emulator, make_task):

    bulk = [queue(make_task(prompt=f"bulk {i}"), priority=Job.Priority.BULK) for i in range(6)]
    interactive = queue(make_task(prompt="now"))
    (message,) = pull_all(on_emulator)  # the interactive subscription holds only the interactive job
    assert message.message.data.decode() == str(interactive.pk)
    outbox.publish([interactive.pk])  # (we pulled without acking: announce it again)
    asyncio.run(serve(transport="pubsub", once=True, concurrency=2))
    assert Job.objects.filter(pk__in=[j.pk for j in bulk], status=JobStatus.SUCCEEDED).count() == 6
    assert Job.objects.get(pk=interactive.pk).status == JobStatus.SUCCEEDED


def test_once_waits_for_jobs_longer_than_its_idle_time(on_emulator, make_task):
    """--once stops when there is no work at all, not when no message came for a second."""
    on_emulator.ECHO_CHUNK_DELAY_MS = 60  # 1.2 s per job
    jobs = [queue(make_task(prompt=" ".join(["w"] * 20))) for _ in range(3)]
    asyncio.run(serve(transport="pubsub", once=True, concurrency=1))
    assert LLMJob.objects.filter(pk__in=[j.pk for j in jobs], status=JobStatus.SUCCEEDED).count() == 3
