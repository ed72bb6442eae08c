"""/healthz (process up) and /readyz (database reachable, migrations applied)."""

import pytest
from django.db import OperationalError
from django.test import Client

from eval import health


@pytest.fixture(autouse=True)
def _production_like(settings):
    # As in production: https redirect on. The probes are exempt, so a plain
    # http probe from a balancer or deploy.sh works.
    settings.SECURE_SSL_REDIRECT = True


def test_healthz_needs_no_database_and_no_login():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok_when_migrated():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_503_with_unapplied_migrations(monkeypatch):
    class Pending:
        def __init__(self, connection):
            self.loader = type("Loader", (), {"graph": type("Graph", (), {"leaf_nodes": lambda self: []})()})()

        def migration_plan(self, targets):
            return [("eval.0099_future", False), ("eval.0100_more", False)]

    monkeypatch.setattr(health, "MigrationExecutor", Pending)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "2 migration(s) not applied"}


@pytest.mark.django_db
def test_readyz_503_when_the_database_is_unreachable(monkeypatch):
    def unreachable(connection):
        raise OperationalError("connection refused to db at 10.0.0.5 with password hunter2")

    monkeypatch.setattr(health, "MigrationExecutor", unreachable)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == "database: OperationalError"  # the error's text (hosts, secrets) is not shown


def test_other_paths_still_redirect_to_https():
    assert Client().get("/accounts/login/").status_code == 301
