"""Task list (keyset pages, filters, counts), reviews, models and status."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from eval.jobs import create, transitions
from eval.models import LLMJob, Review, Task, WorkerHeartbeat
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def put(client, url, body):
    return client.put(url, json.dumps(body), content_type="application/json")


# --- task list ---------------------------------------------------------------------------


def test_task_list_shape_counts_and_reviewed_by_me(reviewer, staff, make_task):
    first, second = make_task(), make_task(status="done")
    job, _ = create.create_job(task=first, provider="echo", model="echo", created_by=reviewer)
    create.create_job(task=first, provider="echo", model="echo", created_by=reviewer)
    transitions.request_cancel(job.pk, by="alice")
    Review.objects.create(task=second, reviewer=reviewer, rating=4)
    Review.objects.create(task=first, reviewer=staff, rating=2)
    body = login(reviewer).get("/api/tasks").json()
    assert set(body) == {"tasks", "next", "count"}
    assert body["count"] == 2 and body["next"] is None
    one, two = body["tasks"]
    assert set(one) == {"id", "external_id", "title", "status", "jobs", "reviewed_by_me", "messages"}
    assert one["jobs"] == {"queued": 1, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 1}
    assert one["reviewed_by_me"] is False and two["reviewed_by_me"] is True
    assert two["status"] == "done"


def test_task_list_keyset_pages_never_skip_or_repeat(reviewer, make_task):
    tasks = [make_task() for _ in range(120)]
    client = login(reviewer)
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/tasks" + (f"?after={cursor}" if cursor else "")
        body = client.get(url).json()
        assert body["count"] == (120 if pages == 0 else 121)  # the whole filter, not the page
        assert len(body["tasks"]) <= 50
        seen += [t["id"] for t in body["tasks"]]
        pages += 1
        if pages == 1:
            make_task()  # a task added mid-way lands at the end, nothing shifts
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 121
    assert seen[:120] == [t.id for t in tasks]


def test_task_list_filters(reviewer, make_task):
    make_task(title="Alpha", prompt="about cats")
    make_task(title="Beta", prompt="about dogs", status="done")
    make_task(title="Gamma", prompt="about CATS and more", external_id="ext-cat")
    client = login(reviewer)
    titles = lambda url: [t["title"] for t in client.get(url).json()["tasks"]]  # noqa: E731
    assert titles("/api/tasks?q=cats") == ["Alpha", "Gamma"]
    assert titles("/api/tasks?q=ext-cat") == ["Gamma"]
    assert titles("/api/tasks?status=done") == ["Beta"]
    assert titles("/api/tasks?status=open&q=beta") == []
    assert client.get("/api/tasks?q=cats").json()["count"] == 2


@pytest.mark.parametrize("query, field", [("status=weird", "status"), ("after=abc", "after"), ("after=-1", "after")])
def test_task_list_bad_parameters_are_400(reviewer, query, field):
    response = login(reviewer).get("/api/tasks?" + query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and response.json()["error"]["field"] == field


def test_task_list_is_empty_for_non_reviewers(outsider, make_task):
    make_task()
    assert login(outsider).get("/api/tasks").json() == {"tasks": [], "next": None, "count": 0}


# --- reviews -------------------------------------------------------------------------------


def test_review_get_without_one_is_nulls(reviewer, task):
    body = login(reviewer).get(f"/api/tasks/{task.id}/review").json()
    assert body["task"] == task.id
    assert body["rating"] is None and body["notes"] is None and body["preferred_job"] is None


def test_review_put_replaces(reviewer, staff, task):
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/review"
    response = put(client, url, {"rating": 4, "notes": "good", "preferred_job": str(job.pk)})
    assert response.status_code == 200
    assert response.json()["rating"] == 4 and response.json()["preferred_job"] == str(job.pk)
    response = put(client, url, {"notes": "changed my mind"})
    assert response.json()["rating"] is None and response.json()["preferred_job"] is None
    assert client.get(url).json()["notes"] == "changed my mind"
    assert Review.objects.get(reviewer=reviewer).rating is None
    # Each reviewer has their own review.
    assert login(staff).get(url).json()["rating"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": True}, "rating"),
        ({"notes": 5}, "notes"),
        ({"preferred_job": "nope"}, "preferred_job"),
        ({"preferred_job": "0b6f7f2e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}, "preferred_job"),
        ({"score": 1}, "score"),
    ],
)
def test_review_put_validation(reviewer, task, body, field):
    response = put(login(reviewer), f"/api/tasks/{task.id}/review", body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not Review.objects.exists()


def test_preferred_job_must_belong_to_the_task(reviewer, task, make_task):
    other_job, _ = create.create_job(task=make_task(), provider="echo", model="echo", created_by=reviewer)
    response = put(login(reviewer), f"/api/tasks/{task.id}/review", {"preferred_job": str(other_job.pk)})
    assert response.status_code == 400 and response.json()["error"]["field"] == "preferred_job"


def test_review_hidden_from_outsiders(outsider, task):
    client = login(outsider)
    assert client.get(f"/api/tasks/{task.id}/review").status_code == 404
    assert put(client, f"/api/tasks/{task.id}/review", {"rating": 1}).status_code == 404


# --- models and status ----------------------------------------------------------------------


def test_models_lists_configured_providers(reviewer, settings):
    settings.ANTHROPIC_API_KEY = "sk-test"
    settings.ANTHROPIC_MODELS = ["claude-test-1:64000"]
    body = login(reviewer).get("/api/models").json()
    by_name = {p["name"]: p for p in body["providers"]}
    assert set(by_name["anthropic"]) == {"name", "label", "demo", "models"}
    assert by_name["anthropic"]["models"] == [{"name": "claude-test-1", "max_tokens": 64000, "judge_only": False}]
    assert by_name["anthropic"]["demo"] is False
    assert by_name["echo"]["demo"] is True
    assert "sk-test" not in json.dumps(body)


def test_status_is_staff_only(reviewer, outsider):
    for user in (reviewer, outsider):
        response = login(user).get("/api/status")
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_status_counts_oldest_wait_and_workers(staff, task):
    old, _ = create.create_job(task=task, provider="echo", model="echo", created_by=staff)
    LLMJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    create.create_job(task=task, provider="echo", model="echo", created_by=staff)
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="w-live", hostname="vm1", pid=10, started_at=now, last_seen=now, jobs_done=3, in_flight=1
    )
    WorkerHeartbeat.objects.create(
        worker_id="w-dead", hostname="vm2", pid=11, started_at=now, last_seen=now - timedelta(minutes=5)
    )
    body = login(staff).get("/api/status").json()
    assert body["counts"] == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert 85 <= body["oldest_queued_age_s"] <= 200
    workers = {w["worker_id"]: w for w in body["workers"]}
    assert set(workers["w-live"]) >= {
        "worker_id",
        "hostname",
        "pid",
        "last_seen",
        "jobs_done",
        "jobs_failed",
        "in_flight",
        "online",
    }
    assert workers["w-live"]["online"] is True and workers["w-dead"]["online"] is False


def test_status_with_nothing_queued(staff):
    body = login(staff).get("/api/status").json()
    assert body["oldest_queued_age_s"] is None and body["workers"] == []
    assert Task.objects.count() == 0
