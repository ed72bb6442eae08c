"""A worker killed with -9 mid-job: its jobs run again within a lease (plus
the repair's interval), on both transports, each ending exactly once; on
Pub/Sub no message nears the dead-letter limit, and one that reaches the
dead-letter topic is still a job the daemon republishes.

The killed worker is a real ``manage.py process_llm_jobs`` process; the one
that takes over runs in a thread (its log records are read for the delivery
attempts). No daemon runs: the surviving worker's own lease repair requeues.
"""

import asyncio
import os
import subprocess
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from google.cloud import pubsub_v1

from eval.broker import pubsub
from eval.jobs import create, outbox, repairs
from eval.models import JobStatus, LLMJob
from eval.transports.pubsub_holds import Holds, LeaseWatch
from eval.worker.service import serve
from tests.conftest import test_database_url
from tests.fakes.pubsub_grpc import FakePubSubServer
from tests.helpers import use_pubsub, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 3
JOBS = 6
PROMPT_WORDS = 40  # at 100 ms a word: 4 s a job, longer than the lease
RECOVERY_BOUND = LEASE_SECONDS + 30  # the bar: every job held by the dead worker running again by then


def crash_settings(settings):
    settings.JOB_LEASE_SECONDS = LEASE_SECONDS
    settings.ECHO_CHUNK_DELAY_MS = 100
    settings.WORKER_FLUSH_INTERVAL_MS = 200
    settings.WORKER_POLL_INTERVAL_MS = 50
    settings.WORKER_SHUTDOWN_GRACE_SECONDS = 1
    return settings


def spawn_worker(transport, settings, lease=LEASE_SECONDS):
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "JOB_TRANSPORT": transport,
        "JOB_LEASE_SECONDS": str(lease),
        "ECHO_CHUNK_DELAY_MS": "100",
        "WORKER_FLUSH_INTERVAL_MS": "200",
        "WORKER_POLL_INTERVAL_MS": "50",
        "LOG_FORMAT": "json",
    }
    if transport == "pubsub":
        env.update(
            PUBSUB_PROJECT_ID=settings.PUBSUB_PROJECT_ID,
            PUBSUB_TOPIC=settings.PUBSUB_TOPIC,
            PUBSUB_SUBSCRIPTION=settings.PUBSUB_SUBSCRIPTION,
            PUBSUB_DEAD_LETTER_TOPIC=settings.PUBSUB_DEAD_LETTER_TOPIC,
        )
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "process_llm_jobs", "--transport", transport],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def queue_jobs(make_task):
    ids = []
    for i in range(JOBS):
        prompt = " ".join(f"j{i}w{k}" for k in range(PROMPT_WORDS))
        job, _ = create.create_job(task=make_task(prompt=prompt), provider="echo", model="echo")
        ids.append(job.pk)
    assert outbox.background.flush(30)
    return ids


def statuses(ids):
    return dict(LLMJob.objects.filter(id__in=ids).values_list("id", "status"))


def kill_mid_job(transport, settings, ids, lease=LEASE_SECONDS):
    """Start a worker, kill it with -9 once every job runs on it; its worker id."""
    process = spawn_worker(transport, settings, lease)
    try:
        wait_for(lambda: set(statuses(ids).values()) == {JobStatus.RUNNING}, timeout=60, message="every job running")
        time.sleep(0.5)  # mid-stream
    finally:
        process.kill()
        process.wait(10)
    (dead,) = set(LLMJob.objects.filter(id__in=ids).values_list("worker_id", flat=True))
    return dead


def running_again(ids, dead):
    """Every job of the dead worker runs on another one (or has ended)."""
    rows = LLMJob.objects.filter(id__in=ids).values_list("status", "worker_id")
    return all(status != JobStatus.QUEUED and worker != dead for status, worker in rows)


def recover(transport, settings, ids, worker_thread, until=None):
    """Kill a worker mid-job, start another at once; seconds until every job
    runs again. The other worker stops once all succeeded and ``until()``."""
    dead = kill_mid_job(transport, settings, ids)
    killed_at = time.monotonic()
    worker = worker_thread(transport=transport, concurrency=JOBS * 2)
    wait_for(lambda: running_again(ids, dead), timeout=RECOVERY_BOUND + 30, interval=0.1, message="running again")
    seconds = time.monotonic() - killed_at
    wait_for(lambda: set(statuses(ids).values()) == {JobStatus.SUCCEEDED}, timeout=60, message="all succeeded")
    if until is not None:
        wait_for(until, timeout=60, interval=0.2, message="the dead worker's messages")
    worker.stop()
    return seconds


def assert_each_ended_once(ids):
    for job in LLMJob.objects.filter(id__in=ids).select_related("task"):
        # Attempt 1 died with its worker; attempt 2 wrote the one result (a third would be a double run).
        assert (job.status, job.attempts, job.output) == (JobStatus.SUCCEEDED, 2, job.task.prompt)


@pytest.fixture
def on_emulator(pubsub_emulator, settings, monkeypatch):
    use_pubsub(settings, monkeypatch, pubsub_emulator.host)
    call_command("pubsub_setup")  # the production subscription: 60-s ack deadline, dead-letter policy
    yield crash_settings(settings)
    outbox.background.flush(30)
    pubsub.reset_publisher()


@pytest.mark.pubsub
def test_a_killed_workers_jobs_run_again_within_a_lease_on_pubsub(on_emulator, make_task, worker_thread, caplog):
    caplog.set_level("INFO", logger="eval.transports.pubsub")
    ids = queue_jobs(make_task)
    seconds = recover("pubsub", on_emulator, ids, worker_thread, until=lambda: redelivered(caplog) >= set(ids))
    assert seconds <= RECOVERY_BOUND, seconds
    assert_each_ended_once(ids)
    attempts = [r.delivery_attempt for r in caplog.records if hasattr(r, "delivery_attempt")]
    assert max(attempts) <= 5, attempts  # far from the dead-letter limit (10)


def redelivered(caplog):
    """The jobs whose message the dead worker had came back through the subscription."""
    return {r.job_id for r in caplog.records if hasattr(r, "delivery_attempt")}


def test_a_killed_workers_jobs_run_again_within_a_lease_on_db(settings, make_task, worker_thread):
    crash_settings(settings)
    ids = queue_jobs(make_task)
    seconds = recover("db", settings, ids, worker_thread)  # no daemon: the surviving worker's lease repair
    assert seconds <= RECOVERY_BOUND, seconds
    assert_each_ended_once(ids)


def test_the_dead_workers_jobs_come_back_by_their_lease_watch_with_publishing_down(
    settings, monkeypatch, make_task, worker_thread, caplog
):
    """On the gRPC fake (a 10-s ack deadline lasts 1 s): the killed worker's
    messages reach the new worker while the dead lease still runs; it acks
    them, watches the leases, and claims the jobs by id once its lease repair
    requeued them. Publishing fails meanwhile, so no new message can be what
    brought them back."""
    caplog.set_level("INFO", logger="eval.transports.pubsub_holds")
    crash_settings(settings).JOB_LEASE_SECONDS = lease = 6
    with FakePubSubServer(deadline_scale=0.1) as fake:
        use_pubsub(settings, monkeypatch, fake.host)
        call_command("pubsub_setup", "--ack-deadline", "10")
        ids = queue_jobs(make_task)
        dead = kill_mid_job("pubsub", settings, ids, lease)
        fake.fail_next_publish(10_000, code=grpc.StatusCode.PERMISSION_DENIED)
        published = fake.published
        killed_at = time.monotonic()
        worker = worker_thread(transport="pubsub", concurrency=JOBS * 2)
        wait_for(lambda: running_again(ids, dead), timeout=lease + 30, interval=0.1, message="running again")
        seconds = time.monotonic() - killed_at
        wait_for(lambda: set(statuses(ids).values()) == {JobStatus.SUCCEEDED}, timeout=60, message="all succeeded")
        worker.stop()
        pubsub.reset_publisher()
        assert fake.published == published and fake.publish_calls > 0  # the requeues' publishes all failed
    assert seconds <= lease + 2 * repairs.worker_repair_interval() + 5, seconds
    assert_each_ended_once(ids)
    watched = {r.job_id for r in caplog.records if r.getMessage().startswith("watching the lease")}
    # Watched while the dead lease ran (all of them, unless a loaded box delayed the redelivery past it).
    assert watched and watched <= set(ids)


# --- the dead-letter topic ---------------------------------------------------------------------


def nack_until_dead_lettered(limit):
    """Pull and nack the subscription's message ``limit`` times, as a crashing
    consumer would; (what the subscription still has, what the dead-letter topic got)."""
    subscriber = pubsub_v1.SubscriberClient()
    path = pubsub.subscription_path()
    dead = subscriber.subscription_path(settings.PUBSUB_PROJECT_ID, settings.PUBSUB_DEAD_LETTER_TOPIC + "-reader")
    topic = pubsub_v1.PublisherClient.topic_path(settings.PUBSUB_PROJECT_ID, settings.PUBSUB_DEAD_LETTER_TOPIC)
    subscriber.create_subscription(request={"name": dead, "topic": topic})
    try:
        for _ in range(limit):
            received = wait_for(lambda: pull(subscriber, path), timeout=30, message="the message")
            nack = {"subscription": path, "ack_ids": [r.ack_id for r in received], "ack_deadline_seconds": 0}
            subscriber.modify_ack_deadline(request=nack)
        left = pull(subscriber, path)  # (the emulator moves a message on at the pull after its last delivery)
        dead_lettered = wait_for(lambda: pull(subscriber, dead), timeout=30, message="the dead-letter topic")
        return left, [r.message.data.decode() for r in dead_lettered]
    finally:
        subscriber.close()


def pull(subscriber, path):
    with warnings.catch_warnings():  # return_immediately is deprecated, yet the way to not wait
        warnings.simplefilter("ignore", DeprecationWarning)
        request = {"subscription": path, "max_messages": 10, "return_immediately": True}
        return list(subscriber.pull(request=request, timeout=5).received_messages)


@pytest.mark.pubsub
def test_a_dead_lettered_message_is_still_a_job_the_daemon_republishes(on_emulator, make_task):
    on_emulator.ECHO_CHUNK_DELAY_MS = 5
    job, _ = create.create_job(task=make_task(prompt="still here"), provider="echo", model="echo")
    assert outbox.background.flush(30)
    # Gone from the subscription: on the dead-letter topic, which no one reads.
    left, dead_lettered = nack_until_dead_lettered(on_emulator.PUBSUB_MAX_DELIVERY_ATTEMPTS)
    assert (left, dead_lettered) == ([], [str(job.pk)])
    assert LLMJob.objects.get(pk=job.pk).status == JobStatus.QUEUED  # the row is the truth
    later = timezone.now() + timedelta(seconds=on_emulator.JOB_REPUBLISH_AFTER_SECONDS + 1)
    assert outbox.due_for_republish(now=later) == [job.pk]
    LLMJob.objects.filter(pk=job.pk).update(
        published_at=timezone.now() - timedelta(seconds=on_emulator.JOB_REPUBLISH_AFTER_SECONDS + 1),
        available_at=timezone.now() - timedelta(seconds=on_emulator.JOB_REPUBLISH_AFTER_SECONDS + 1),
    )
    assert repairs.run_repairs().republished == 1
    asyncio.run(serve(transport="pubsub", once=True))
    done = LLMJob.objects.get(pk=job.pk)
    assert (done.status, done.output, done.attempts) == (JobStatus.SUCCEEDED, "still here", 1)


# --- holds and watches, alone ---------------------------------------------------------------------------


class Message:
    def __init__(self):
        self.acks = 0

    def ack(self):
        self.acks += 1


def test_a_lease_watch_claims_when_the_lease_could_have_run_out_and_ends_once_it_is_renewed():
    async def scenario():
        arrived = []
        watch = LeaseWatch(asyncio.get_running_loop(), lambda job_id, m: arrived.append((job_id, m)), 0.05)
        lease = timezone.now() + timedelta(seconds=0.1)
        assert watch.watch("j", lease) and "j" in watch
        await asyncio.sleep(0.1 + 1.2)  # the lease's end and the grace
        assert arrived == [("j", None)]  # claim by id
        # Still running under the same lease, run out (its worker is dead): tried again soon, and
        # at once when the lease repair requeued jobs.
        assert watch.watch("j", lease)
        watch.leases_requeued()
        await asyncio.sleep(0.1)
        assert arrived[1:] == [("j", None), ("j", None)]
        # A renewed lease: the holder is alive, the watch ends.
        assert not watch.watch("j", lease + timedelta(seconds=5)) and "j" not in watch
        watch.leases_requeued()
        assert len(arrived) == 3

    asyncio.run(scenario())


def test_holds_ack_an_older_copy_when_the_job_starts_here_and_leave_the_new_message_alone():
    async def scenario():
        arrived = []
        holds = Holds(asyncio.get_running_loop(), lambda job_id, m: arrived.append((job_id, m)))
        waiting, claimed = Message(), Message()
        holds.look_again("j", 0.05, waiting)  # e.g. in retry backoff
        holds.keep("j", claimed)  # another copy arrived and claimed the job
        assert waiting.acks == 1
        await asyncio.sleep(0.1)
        assert arrived == [] and holds.take("j") is claimed  # the timer left the running job's message alone

    asyncio.run(scenario())
