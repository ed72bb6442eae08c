"""The per-request fast paths: the session store and the user load in one
SQL statement each (prepared on PostgreSQL), the prepared cursor, and the
PostgreSQL health check that needs no round trip."""

import select
import time
from datetime import timedelta

import psycopg
import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eval.auth_backend import ModelBackend
from eval.db import prepared_cursor, prepares_statements
from eval.sessions import SessionStore
from tests.helpers import login

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def test_session_store_round_trip_and_expiry():
    store = SessionStore()
    store["answer"] = 42
    store.save()
    key = store.session_key

    assert SessionStore(key).load() == {"answer": 42}

    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    expired = SessionStore(key)
    assert expired.load() == {}
    assert expired.session_key is None  # an expired key is dropped, as Django's store does

    unknown = SessionStore("x" * 32)
    assert unknown.load() == {}
    assert unknown.session_key is None


def test_login_logout_through_the_store(client, reviewer, task):
    # django-axes's backend needs the request it throttles (its documented way for the test client).
    assert client.login(request=HttpRequest(), username="alice", password="pw-alice-123")
    key = client.cookies["sessionid"].value
    assert SessionStore(key).load()[SESSION_KEY] == str(reviewer.pk)
    assert client.get(f"/api/tasks/{task.id}/jobs").status_code == 200

    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key  # a stolen, logged-out cookie is worth nothing
    assert client.get(f"/api/tasks/{task.id}/jobs").status_code == 401


def test_backend_loads_the_same_user_as_the_orm(reviewer):
    user = ModelBackend().get_user(reviewer.pk)
    expected = get_user_model().objects.get(pk=reviewer.pk)
    fields = [field.attname for field in expected._meta.concrete_fields]
    assert {f: getattr(user, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert user.has_perm("eval.review_task")
    assert user._state.adding is False and user._state.db == "default"


def test_backend_refuses_inactive_and_missing_users(reviewer):
    assert ModelBackend().get_user(reviewer.pk + 1000) is None
    reviewer.is_active = False
    reviewer.save()
    assert ModelBackend().get_user(reviewer.pk) is None


def test_password_change_ends_other_sessions(reviewer, task):
    client = login(reviewer)
    assert client.get(f"/api/tasks/{task.id}/jobs").status_code == 200
    reviewer.set_password("a-new-password-456")
    reviewer.save()
    assert client.get(f"/api/tasks/{task.id}/jobs").status_code == 401


def test_prepared_cursor_goes_through_django_query_logging(task):
    with CaptureQueriesContext(connection) as ctx, prepared_cursor() as cursor:
        cursor.execute("SELECT title FROM eval_task WHERE id = %s", [task.id])
        assert cursor.fetchone() == ("A task",)
    assert len(ctx.captured_queries) == 1
    assert "eval_task" in ctx.captured_queries[0]["sql"]


@postgres_only
def test_prepared_cursor_prepares_on_postgresql(task):
    assert prepares_statements()
    sql = "SELECT id FROM eval_task WHERE id = %s AND title <> 'prepared-statement-probe'"
    with prepared_cursor() as cursor:
        cursor.execute(sql, [task.id])
        assert cursor.fetchone() == (task.id,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any("prepared-statement-probe" in statement for statement in statements)


@postgres_only
@pytest.mark.django_db(transaction=True)  # the test's connection is killed: no transaction to roll back
def test_health_check_spots_a_connection_the_server_closed():
    connection.ensure_connection()
    assert connection.is_usable()
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye arrives on the socket; no query was sent to learn it.
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    deadline = time.monotonic() + 15
    while not poller.poll(50) and time.monotonic() < deadline:
        pass
    assert connection.is_usable() is False
    # What Django does at the start of a request: replace it, then carry on.
    connection.close()
    connection.ensure_connection()
    assert connection.is_usable()
