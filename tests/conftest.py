"""Shared fixtures. The suite runs on SQLite and on PostgreSQL (tests/run_suite.py)."""

import os

import pytest
from django.contrib.auth.models import Group

from eval import providers
from eval.models import Task


def require(name):
    """True when the CI asked that a skip be a failure (REQUIRE_POSTGRES=1 ...)."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _fresh_providers():
    providers.reset()
    yield
    providers.reset()


@pytest.fixture
def fast_jobs(settings):
    """Timings at about a second, so leases, deadlines and retries are testable."""
    settings.ECHO_CHUNK_DELAY_MS = 5
    settings.JOB_LEASE_SECONDS = 2
    settings.WORKER_FLUSH_INTERVAL_MS = 100
    settings.WORKER_POLL_INTERVAL_MS = 50
    settings.JOB_RETRY_BASE_DELAY_SECONDS = 0.05
    settings.JOB_RETRY_MAX_DELAY_SECONDS = 0.2
    settings.WORKER_SHUTDOWN_GRACE_SECONDS = 2
    return settings


@pytest.fixture
def task(db):
    return Task.objects.create(source="tests", external_id="t1", title="A task", prompt="one two three four five")


@pytest.fixture
def make_task(db):
    counter = iter(range(10_000))

    def make(prompt="one two three four five", **fields):
        n = next(counter)
        fields.setdefault("source", "tests")
        fields.setdefault("external_id", f"task-{n}")
        fields.setdefault("title", f"Task {n}")
        return Task.objects.create(prompt=prompt, **fields)

    return make


def reviewers_group():
    """The migration's group (a transactional test's flush may have removed it)."""
    from django.contrib.auth.models import Permission

    group, created = Group.objects.get_or_create(name="reviewers")
    if created:
        group.permissions.add(Permission.objects.get(codename="review_task", content_type__app_label="eval"))
    return group


@pytest.fixture
def reviewer(db, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    user.groups.add(reviewers_group())
    return user


@pytest.fixture
def outsider(db, django_user_model):
    return django_user_model.objects.create_user("mallory", password="pw-mallory-123")


@pytest.fixture
def staff(db, django_user_model):
    return django_user_model.objects.create_user("sam", password="pw-sam-123", is_staff=True)


def test_database_url():
    """A DATABASE_URL for subprocesses that points at the test database."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


class WorkerThread:
    """``serve()`` on its own event loop in a thread, stoppable like SIGTERM."""

    def __init__(self, **options):
        import threading

        self.options = options
        self.loop = None
        self.stopping = None
        self.executor = None
        self.error = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        import asyncio

        from eval.worker.service import serve

        async def main():
            self.loop = asyncio.get_running_loop()
            self.stopping = asyncio.Event()
            self._ready.set()
            self.executor = await serve(stopping=self.stopping, **self.options)

        try:
            asyncio.run(main())
        except BaseException as error:  # surfaced by join()
            self.error = error
            self._ready.set()

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self, timeout=30):
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stopping.set)
        return self.join(timeout)

    def join(self, timeout=30):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "worker thread did not stop"
        if self.error:
            raise self.error
        return self.executor


@pytest.fixture
def worker_thread():
    started = []

    def start(**options):
        started.append(WorkerThread(**options).start())
        return started[-1]

    yield start
    for worker in started:
        if worker._thread.is_alive():
            worker.stop()


@pytest.fixture(scope="session")
def pubsub_emulator():
    """The official Pub/Sub emulator, started once per test session."""
    from tests.fakes.pubsub_emulator import PubSubEmulator, find_emulator

    if find_emulator() is None:
        reason = "Pub/Sub emulator not installed (Debian package google-cloud-cli-pubsub-emulator, needs Java)"
        if require("REQUIRE_PUBSUB_EMULATOR"):
            pytest.fail(reason + " and REQUIRE_PUBSUB_EMULATOR=1")
        pytest.skip(reason)
    with PubSubEmulator() as emulator:
        yield emulator
