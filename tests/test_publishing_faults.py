"""Publishing when the broker is down: a request never waits on it (the
process's background publisher does), a circuit breaker stops trying for a
cool-down, the daemon's republish keeps its time budget however long a publish
hangs, and a worker whose subscription is missing says so plainly."""

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from google.cloud import pubsub_v1

from eval import broker as queue
from eval.broker import pubsub
from eval.broker.breaker import CircuitBreaker
from eval.daemon import passes
from eval.jobs import create, outbox, repairs, transitions
from eval.jobs.publisher import BackgroundPublisher
from eval.models import JobStatus, LLMJob
from tests.conftest import test_database_url
from tests.fakes.pubsub_grpc import FakePubSubServer
from tests.helpers import free_port, login, use_pubsub

ROOT = Path(__file__).resolve().parent.parent
PUBLISHER_THREAD = "job-publisher"


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture(autouse=True)
def _fresh_publishing():
    """The breaker and the client are per process: each test starts with neither."""
    queue.reset_breaker()
    pubsub.reset_publisher()
    yield
    outbox.background.flush(30)  # nothing a test handed over runs into the next one
    queue.reset_breaker()
    pubsub.reset_publisher()


def use_broker(settings, monkeypatch, host):
    """The pubsub transport against ``host`` with a short deadline (the breaker left as it is)."""
    use_pubsub(settings, monkeypatch, host, publish_timeout=0.5, reset_breaker=False)


@pytest.fixture
def broker_down(settings, monkeypatch):
    """A broker that is not there: a local port nothing listens on (connection refused)."""
    use_broker(settings, monkeypatch, f"127.0.0.1:{free_port()}")
    return settings


@pytest.fixture
def publish_calls(monkeypatch):
    """Each call of the Pub/Sub publish (the real one still runs): the thread it ran on."""
    calls = []
    real = pubsub.publish

    def spy(messages, timeout):
        calls.append(threading.current_thread().name)
        return real(messages, timeout)

    monkeypatch.setattr(pubsub, "publish", spy)
    return calls


def unpublished_jobs(task, n, age=timedelta(minutes=1)):
    """``n`` queued jobs whose process never published them, ``age`` ago."""
    jobs = [create.create_job(task=task, provider="echo", model="echo")[0] for _ in range(n)]
    LLMJob.objects.filter(pk__in=[job.pk for job in jobs]).update(published_at=None, updated_at=timezone.now() - age)
    return jobs


# --- 1. a request never publishes ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_creates_a_job_without_publishing_in_the_request(broker_down, plain_http, reviewer, task, publish_calls):
    response = login(reviewer).post(
        f"/api/tasks/{task.id}/jobs", json.dumps({"provider": "echo", "model": "echo"}), content_type="application/json"
    )
    assert response.status_code == 201
    assert outbox.background.flush(30)
    # The test client runs the view (and its on-commit hooks) on this thread: it never published.
    assert publish_calls == [PUBLISHER_THREAD] and threading.current_thread().name != PUBLISHER_THREAD
    job = LLMJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.published_at) == (JobStatus.QUEUED, None)  # the outbox row is the promise
    assert queue.breaker().failures == 1


@pytest.mark.django_db(transaction=True)
def test_the_daemon_republishes_what_the_process_could_not_once_the_broker_is_back(
    broker_down, monkeypatch, task, publish_calls
):
    job, _ = create.create_job(task=task, provider="echo", model="echo")
    assert outbox.background.flush(30)
    assert publish_calls == [PUBLISHER_THREAD]
    assert passes.run_pass(source="").republished == 0  # still in its process's hands for a moment
    LLMJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=1))  # later
    assert passes.run_pass(source="").republished == 0  # the broker is still down
    assert LLMJob.objects.get(pk=job.pk).published_at is None

    with FakePubSubServer() as broker:
        use_broker(broker_down, monkeypatch, broker.host)
        call_command("pubsub_setup", "--ack-deadline", "10", stdout=io.StringIO())
        result = passes.run_pass(source="")
        assert result.ok, result.errors
        assert result.republished == 1 and broker.published == 1
        assert LLMJob.objects.get(pk=job.pk).published_at is not None
        pubsub.reset_publisher()


@pytest.mark.django_db(transaction=True)
def test_a_requeue_in_a_worker_or_the_daemon_publishes_on_the_publisher_thread(broker_down, task, publish_calls):
    job, _ = create.create_job(task=task, provider="echo", model="echo")
    assert outbox.background.flush(30)  # else the thread may send both hand-overs in one batch
    LLMJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id="w1")
    transitions.requeue(job.pk)
    assert outbox.background.flush(30)
    assert publish_calls == [PUBLISHER_THREAD, PUBLISHER_THREAD]


@pytest.mark.django_db
def test_the_daemon_leaves_a_job_its_process_is_still_publishing(settings, task):
    settings.JOB_TRANSPORT = "pubsub"
    settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS = 2
    fresh = unpublished_jobs(task, 1, age=timedelta(seconds=1))[0]
    left = unpublished_jobs(task, 1, age=timedelta(seconds=5))[0]
    assert outbox.due_for_republish() == [left.pk]
    assert fresh.pk in outbox.due_for_republish(now=timezone.now() + timedelta(seconds=4))


# --- 2. the circuit breaker ------------------------------------------------------------------


def test_the_breaker_opens_after_failures_and_closes_after_the_cool_down():
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, cooldown_seconds=30, clock=clock)
    breaker.failed()
    breaker.failed()
    assert breaker.allows()
    breaker.failed()
    assert breaker.is_open
    clock.advance(29.9)
    assert breaker.is_open
    clock.advance(0.2)
    assert breaker.allows()  # a trial
    breaker.failed()  # the trial failed: another cool-down at once
    assert breaker.is_open
    clock.advance(30)
    breaker.succeeded()
    assert breaker.allows() and breaker.failures == 0
    breaker.failed()
    assert breaker.allows()  # counting starts again


def test_an_open_breaker_stops_publishing_and_leaves_jobs_to_the_daemon(settings, monkeypatch):
    settings.JOB_TRANSPORT = "pubsub"
    clock = FakeClock()
    queue.reset_breaker(CircuitBreaker(failures=3, cooldown_seconds=30, clock=clock))
    calls = []
    monkeypatch.setattr(pubsub, "publish", lambda messages, timeout: calls.append(timeout) or [])
    message = queue.JobMessage(uuid.uuid4(), 1, "echo")
    for _ in range(5):
        assert queue.publish([message]) == []
    assert len(calls) == 3  # the broker was asked three times, then left alone
    handed = []
    publisher = BackgroundPublisher(send=handed.append)
    assert publisher.submit([message.job_id]) is False and publisher.thread is None
    assert publisher.left_for_daemon == 1

    clock.advance(30)
    monkeypatch.setattr(pubsub, "publish", lambda messages, timeout: [m.job_id for m in messages])
    assert queue.publish([message]) == [message.job_id]  # the trial after the cool-down went out
    assert queue.breaker().allows() and queue.breaker().failures == 0


# --- the republish step's budget ---------------------------------------------------------------


@pytest.fixture
def blocking_publish(settings, monkeypatch):
    """A publish that blocks for its whole deadline on a fake clock, then
    answers ``succeed`` (all sent) or not (nothing sent)."""
    settings.JOB_TRANSPORT = "pubsub"
    settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS = 3
    clock = FakeClock()
    queue.reset_breaker(CircuitBreaker(failures=3, cooldown_seconds=30, clock=clock))
    fake = type("Blocking", (), {"clock": clock, "timeouts": [], "succeed": True})()

    def publish(messages, timeout):
        fake.timeouts.append(timeout)
        clock.advance(timeout)
        return [message.job_id for message in messages] if fake.succeed else []

    monkeypatch.setattr(pubsub, "publish", publish)
    monkeypatch.setattr(repairs, "REPUBLISH_BATCH", 2)
    return fake


@pytest.mark.django_db
def test_the_republish_step_stops_within_its_budget_when_every_publish_blocks(blocking_publish, task):
    unpublished_jobs(task, 20)
    clock = blocking_publish.clock
    started = clock()
    sent = repairs.republish(repairs.Budget(started + 10, clock))
    assert blocking_publish.timeouts == [3, 3, 3, 1]  # the last publish got only what was left
    assert clock() == started + 10 and sent == 8
    assert LLMJob.objects.filter(published_at__isnull=True).count() == 12  # for the next pass


@pytest.mark.django_db
def test_the_republish_step_stops_when_the_broker_refuses_or_the_breaker_is_open(blocking_publish, task):
    unpublished_jobs(task, 20)
    blocking_publish.succeed = False
    clock = blocking_publish.clock
    for _ in range(3):
        assert repairs.republish(repairs.Budget(clock() + 10, clock)) == 0
    assert blocking_publish.timeouts == [3, 3, 3]  # one refused publish per pass
    assert repairs.republish(repairs.Budget(clock() + 10, clock)) == 0
    assert blocking_publish.timeouts == [3, 3, 3]  # open: not even tried


@pytest.mark.django_db
def test_every_repair_step_gets_its_budget_on_the_injected_clock(blocking_publish, task):
    unpublished_jobs(task, 20)
    report = repairs.run_repairs(budget=5, clock=blocking_publish.clock)
    assert not report.errors and report.republished == 4
    assert blocking_publish.timeouts == [3, 2]


# --- the background publisher's thread -----------------------------------------------------


def test_the_publisher_thread_starts_on_first_use_and_anew_in_a_forked_child():
    sent = []
    publisher = BackgroundPublisher(send=sent.append)
    assert publisher.thread is None  # nothing started at import or construction
    assert publisher.submit(["a"]) and publisher.flush(30)
    parent_thread = publisher.thread
    assert parent_thread.daemon and parent_thread.name == PUBLISHER_THREAD and sent == [["a"]]

    pid = os.fork()
    if pid == 0:  # the child: the parent's thread did not come along
        forgot = publisher.thread is None
        started = publisher.submit(["b"]) and publisher.flush(30) and publisher.thread.is_alive()
        os._exit(0 if forgot and started and sent[-1] == ["b"] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert publisher.thread is parent_thread and sent == [["a"]]


def test_a_full_queue_leaves_jobs_to_the_daemon():
    busy, release = threading.Event(), threading.Event()
    publisher = BackgroundPublisher(send=lambda job_ids: busy.set() or release.wait(30), max_pending=1)
    try:
        assert publisher.submit(["a"])
        assert busy.wait(30)  # the thread took it and blocks on it
        assert publisher.submit(["b"])  # waits in the queue
        assert publisher.submit(["c"]) is False and publisher.left_for_daemon == 1
    finally:
        release.set()
    assert publisher.flush(30)


def test_a_process_exits_while_a_publish_hangs(tmp_path):
    """The thread is a daemon thread and the exit hook waits one publish deadline at most."""
    script = textwrap.dedent(
        """
        import threading, django
        django.setup()
        from eval.jobs.publisher import BackgroundPublisher
        publisher = BackgroundPublisher(send=lambda job_ids: threading.Event().wait())
        assert publisher.submit(["stuck"])
        print("handed over", flush=True)
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2",
    }
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "handed over" in done.stdout and "not yet published" in done.stderr


# --- 8. a missing subscription -------------------------------------------------------------


@pytest.fixture
def broker_without_bulk_subscription(settings, monkeypatch, fast_jobs):

    with FakePubSubServer() as broker:
        use_broker(settings, monkeypatch, broker.host)
        call_command("pubsub_setup", "--ack-deadline", "10", stdout=io.StringIO())
        subscriber = pubsub_v1.SubscriberClient()
        subscriber.delete_subscription(request={"subscription": pubsub.subscription_path(bulk=True)})
        subscriber.close()
        yield broker


@pytest.mark.django_db(transaction=True)
def test_a_worker_says_which_subscription_is_missing_and_how_to_make_it(broker_without_bulk_subscription, caplog):
    with pytest.raises(CommandError) as caught:
        call_command("process_llm_jobs", "--transport", "pubsub", "--once")
    assert caught.value.returncode == 1
    message = str(caught.value)
    assert pubsub.subscription_path(bulk=True) in message and "does not exist" in message
    assert "manage.py pubsub_setup" in message
    assert "subscribed to" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_exits_1_without_a_traceback_when_a_subscription_is_missing(
    broker_without_bulk_subscription, settings
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
        "DATABASE_URL": test_database_url(),
        "PUBSUB_EMULATOR_HOST": broker_without_bulk_subscription.host,
        "JOB_TRANSPORT": "pubsub",
        "PUBSUB_PROJECT_ID": settings.PUBSUB_PROJECT_ID,
        "PUBSUB_TOPIC": settings.PUBSUB_TOPIC,
        "PUBSUB_SUBSCRIPTION": settings.PUBSUB_SUBSCRIPTION,
        "LOG_FORMAT": "text",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "process_llm_jobs", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"{settings.PUBSUB_SUBSCRIPTION}-bulk does not exist" in output and "pubsub_setup" in output
    assert "Traceback" not in output and "subscribed to" not in output
