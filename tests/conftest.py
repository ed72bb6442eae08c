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


@pytest.fixture
def reviewer(db, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    user.groups.add(Group.objects.get(name="reviewers"))
    return user


@pytest.fixture
def outsider(db, django_user_model):
    return django_user_model.objects.create_user("mallory", password="pw-mallory-123")


@pytest.fixture
def staff(db, django_user_model):
    return django_user_model.objects.create_user("sam", password="pw-sam-123", is_staff=True)
