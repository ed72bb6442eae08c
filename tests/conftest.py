"""Shared fixtures. The suite runs on SQLite and on PostgreSQL (tests/run_suite.py)."""

import os

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection

from eval import providers
from eval.evaluation.reviews import seen
from eval.models import Task
from tests.fakes.pubsub_emulator import PubSubEmulator, find_emulator
from tests.helpers import WorkerThread

# Browser fixtures (tests/test_browser*.py); the API on a live server (test_openapi.py, test_schemathesis.py).
pytest_plugins = ["tests.browser_support", "tests.live_api"]
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "django_db_setup",
    "live_server",
}


def require(name):
    """True when the CI asked that a skip be a failure (REQUIRE_POSTGRES=1 ...)."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def uses_database(item):
    """A django_db mark, or a fixture that needs the test database (directly or not).
    pytest-django refuses database access to every other test."""
    if getattr(item, "cls", None) is not None and hasattr(item.cls, "databases"):  # a django.test TestCase
        return True
    fixtures = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("django_db") is not None or bool(DATABASE_FIXTURES & fixtures)


def pytest_report_header(config):
    if require("TEST_DATABASE_TESTS_ONLY"):
        return (
            "TEST_DATABASE_TESTS_ONLY=1: the tests that use no database, and those marked sqlite_pass_only, "
            "are deselected (the SQLite pass runs them)"
        )
    return None


def pytest_collection_modifyitems(config, items):
    """TEST_DATABASE_TESTS_ONLY=1 (run_suite.py's PostgreSQL pass): deselect the
    tests that use no database. They give the same answer on any database and
    have run on the SQLite pass. So do the tests marked ``sqlite_pass_only``
    (slow ones that are enough on one database). A test that starts a subprocess
    must give it its own DATABASE_URL (tests/conftest.py test_database_url() needs the db)."""
    if not require("TEST_DATABASE_TESTS_ONLY"):
        return
    kept, dropped = [], []
    for item in items:
        once = item.get_closest_marker("sqlite_pass_only") is not None
        (kept if uses_database(item) and not once else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fresh_providers():
    providers.reset()
    yield
    providers.reset()


@pytest.fixture(autouse=True)
def _fresh_seen_cache():
    """The process's memory of recorded (user, task) views outlives a test's database."""

    seen.forget_cache()
    yield
    seen.forget_cache()


@pytest.fixture
def plain_http(settings):
    """Test clients talk plain HTTP (no SSL redirect), static URLs need no
    collectstatic manifest, and passwords hash fast."""
    settings.SECURE_SSL_REDIRECT = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return settings


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

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture
def worker_thread():
    """Start ``serve(**options)`` in a thread; every one still running is stopped at teardown."""
    started = []

    def start(**options):
        started.append(WorkerThread(**options).start())
        return started[-1]

    yield start
    for worker in started:
        if worker.alive:
            worker.stop()


@pytest.fixture(scope="session")
def pubsub_emulator():
    """The official Pub/Sub emulator, started once per test session."""

    if find_emulator() is None:
        reason = "Pub/Sub emulator not installed (Debian package google-cloud-cli-pubsub-emulator, needs Java)"
        if require("REQUIRE_PUBSUB_EMULATOR"):
            pytest.fail(reason + " and REQUIRE_PUBSUB_EMULATOR=1")
        pytest.skip(reason)
    with PubSubEmulator() as emulator:
        yield emulator
