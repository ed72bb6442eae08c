"""Per-user job limits hold under concurrency (MAX_QUEUED_JOBS_PER_USER and
JOB_CREATE_RATE): a burst of parallel creates on a threaded live server makes
exactly the allowed number of jobs, and a create waits for the user's lock
before it counts."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from eval.jobs import create
from eval.jobs.quota import check_job_creation
from eval.models import ApiToken, LLMJob
from tests.helpers import LiveServer, parallel

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 30
ALLOWED = 5


def create_over_http(url, token, task_id):
    request = urllib.request.Request(
        f"{url}/api/tasks/{task_id}/jobs",
        data=json.dumps({"provider": "echo", "model": "echo"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def burst_of_creates(user, task):
    _, token = ApiToken.issue(user, "burst")
    with LiveServer() as url:
        return parallel([lambda: create_over_http(url, token, task.id)] * BURST)


def assert_exactly_allowed(answers, user):
    statuses = [status for status, _, _ in answers]
    assert (statuses.count(201), statuses.count(429)) == (ALLOWED, BURST - ALLOWED), statuses
    for status, headers, body in answers:
        if status == 429:
            assert body["error"]["code"] == "rate_limited"
            assert int(headers["Retry-After"]) >= 1
    assert LLMJob.objects.filter(created_by=user).count() == ALLOWED


def test_it_caps_queued_jobs_under_a_burst(plain_http, reviewer, task):
    plain_http.MAX_QUEUED_JOBS_PER_USER = ALLOWED
    plain_http.JOB_CREATE_RATE = (1000, 60)
    assert_exactly_allowed(burst_of_creates(reviewer, task), reviewer)


def test_it_holds_the_create_rate_under_a_burst(plain_http, reviewer, task):
    plain_http.MAX_QUEUED_JOBS_PER_USER = 1000
    plain_http.JOB_CREATE_RATE = (ALLOWED, 3600)
    assert_exactly_allowed(burst_of_creates(reviewer, task), reviewer)


def short_lock_wait():
    """This connection gives up on a held lock after 0.3 s instead of waiting."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET lock_timeout = '300ms'")
        else:
            cursor.execute("PRAGMA busy_timeout = 300")


def in_thread(call):
    """``call()`` on a thread of its own (its own database connection, closed after)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_it_counts_only_once_it_holds_the_users_lock(settings, reviewer, task):
    """One transaction has counted the user's jobs and not yet inserted: another
    create for the same user cannot count until it ends (here it gives up)."""
    settings.MAX_QUEUED_JOBS_PER_USER = ALLOWED
    counted, release = threading.Event(), threading.Event()

    def count_and_hold():
        with transaction.atomic():
            check_job_creation(reviewer)
            counted.set()
            release.wait(60)

    holder, _ = in_thread(count_and_hold)
    try:
        assert counted.wait(30)

        def second_create():
            short_lock_wait()
            with CaptureQueriesContext(connection) as queries:
                try:
                    create.create_job(
                        task=task,
                        provider="echo",
                        model="echo",
                        created_by=reviewer,
                        admit=lambda: check_job_creation(reviewer),
                    )
                except OperationalError:
                    return "waited", [query["sql"] for query in queries]
            return "created", [query["sql"] for query in queries]

        second, outcome = in_thread(second_create)
        second.join(60)
        result, statements = outcome["value"]
        assert result == "waited"
        assert not [sql for sql in statements if "eval_llmjob" in sql.lower()], "counted before holding the lock"
    finally:
        release.set()
        holder.join(60)
    assert LLMJob.objects.count() == 0
    job, created = create.create_job(
        task=task, provider="echo", model="echo", created_by=reviewer, admit=lambda: check_job_creation(reviewer)
    )
    assert created and LLMJob.objects.count() == 1
