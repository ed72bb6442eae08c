"""/api/runs and /api/budget: permissions, refusals in DESIGN's shape with the
estimate, keyset pages, the ETag/304 poll, cancel and launch now."""

import json

import pytest
from django.contrib.auth.models import Permission

from eval.evaluation.runs import report as run_report
from eval.jobs import claims, endings
from eval.models import DailySpend, LLMJob, Run
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def launcher(django_user_model):
    user = django_user_model.objects.create_user("lena", password="pw-lena-123")
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def post(client, path, body=None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def new_run(client, **extra):
    return post(client, "/api/runs", {"name": "r", "provider": "echo", "model": "echo", **extra})


def test_it_creates_and_launches_a_run_for_a_launcher(launcher, make_task):
    make_task()
    make_task()
    response = new_run(login(launcher), params={"max_tokens": 9}, tasks={"status": "open"})
    assert response.status_code == 201, response.content
    data = response.json()
    assert response["Location"] == f"/api/runs/{data['id']}"
    assert data["status"] == "running" and data["counts"]["queued"] == 2 and data["created_by"] == "lena"
    assert data["params"] == {"max_tokens": 9} and data["estimated_cost_usd"] == 0.0
    jobs = LLMJob.objects.filter(run_id=data["id"])
    assert jobs.count() == 2 and set(jobs.values_list("priority", flat=True)) == {LLMJob.Priority.BULK}


def test_only_staff_or_launchers_create_runs(reviewer, outsider, staff, make_task):
    make_task()
    for user in (reviewer, outsider):
        response = new_run(login(user))
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert not Run.objects.exists()
    assert new_run(login(staff)).status_code == 201


def test_refusals_carry_the_estimate(staff, make_task, settings):
    settings.MODEL_PRICES = {"echo": [1, 2]}
    settings.BULK_CONFIRM_COST_USD = 0.001
    settings.USER_DAILY_BUDGET_USD = 0.003
    make_task(prompt="p" * 40)  # 0.002058
    client = login(staff)
    refused = new_run(client)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "confirm_cost" and error["estimated_cost_usd"] == 0.002058
    assert new_run(client, confirm_cost_usd=0.002058).status_code == 201
    over = new_run(client, confirm_cost_usd=1)
    assert over.status_code == 409
    assert over.json()["error"] | {"message": ""} == {
        "code": "budget_exceeded",
        "message": "",
        "estimated_cost_usd": 0.002058,
    }
    assert Run.objects.count() == 1 and float(DailySpend.objects.get(user=staff).reserved_usd) == 0.002058
    budget = client.get("/api/budget").json()
    assert budget["reserved_usd"] == 0.002058 and budget["budget_usd"] == 0.003
    assert budget["left_usd"] == pytest.approx(0.003 - 0.002058)


def test_a_bad_body_is_invalid_with_its_field(staff):
    client = login(staff)
    response = new_run(client, params={"max_tokens": 0})
    assert response.status_code == 400 and response.json()["error"]["field"] == "params.max_tokens"
    response = new_run(client, tasks={"ids": "1,2"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "tasks.ids"
    response = new_run(client, schedule="sometimes")
    assert response.status_code == 400 and response.json()["error"]["field"] == "schedule"


def test_list_pages_by_keyset(staff, reviewer, outsider):
    for n in range(53):
        Run.objects.create(name=f"r{n}", provider="echo", model="echo", created_by=staff)
    client = login(reviewer)
    first = client.get("/api/runs").json()
    assert len(first["runs"]) == 50 and first["next"] == first["runs"][-1]["id"]
    Run.objects.create(name="newer", provider="echo", model="echo")  # does not shift the next page
    second = client.get(f"/api/runs?after={first['next']}").json()
    assert [r["name"] for r in second["runs"]] == ["r2", "r1", "r0"] and second["next"] is None
    assert login(outsider).get("/api/runs").json() == {"runs": [], "next": None}
    assert login(outsider).get(f"/api/runs/{first['next']}").status_code == 404


def test_get_has_an_etag_that_moves_with_its_jobs(staff, make_task):
    make_task()
    client = login(staff)
    run_id = new_run(client).json()["id"]
    first = client.get(f"/api/runs/{run_id}")
    tag = first["ETag"]
    assert first.status_code == 200 and tag
    again = client.get(f"/api/runs/{run_id}", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 304 and again.content == b""
    job = claims.claim_next("w1", 1)[0]
    moved = client.get(f"/api/runs/{run_id}", HTTP_IF_NONE_MATCH=tag)
    assert moved.status_code == 200 and moved.json()["counts"]["running"] == 1
    endings.succeed_one(job.id, "w1", job.attempt, output="done", stop_reason="end_turn")
    done = client.get(f"/api/runs/{run_id}", HTTP_IF_NONE_MATCH=moved["ETag"])
    assert done.json()["status"] == "done" and done.json()["progress"] == 100
    assert client.get(f"/api/runs/{run_id}", HTTP_IF_NONE_MATCH=done["ETag"]).status_code == 304
    assert client.get("/api/runs/999").status_code == 404


def test_a_job_ending_while_the_poll_is_answered_is_not_lost_behind_a_304(staff, make_task, monkeypatch):
    """The race a browser test met under load: the last job's final write lands after
    the poll counted the run's jobs (so it answers "running") but before the answer's
    tag is read. The next poll must still see a change and show the run done."""

    make_task()
    client = login(staff)
    run_id = new_run(client).json()["id"]
    job = claims.claim_next("w1", 1)[0]
    real_counts = run_report.counts

    def counts_then_the_job_ends(run_id):
        counted = real_counts(run_id)  # sees the job running
        endings.succeed_one(job.id, "w1", job.attempt, output="done", stop_reason="end_turn")
        return counted

    monkeypatch.setattr(run_report, "counts", counts_then_the_job_ends)
    raced = client.get(f"/api/runs/{run_id}")
    assert raced.json()["status"] == "running"
    monkeypatch.setattr(run_report, "counts", real_counts)

    after = client.get(f"/api/runs/{run_id}", HTTP_IF_NONE_MATCH=raced["ETag"])
    assert after.status_code == 200 and after.json()["status"] == "done"
    assert Run.objects.get(pk=run_id).status == Run.Status.RUNNING  # shown, not stored: the daemon's pass stores it


def test_the_unchanged_poll_is_one_cheap_statement(staff, make_task, django_assert_max_num_queries):
    make_task()
    client = login(staff)
    run_id = new_run(client).json()["id"]
    tag = client.get(f"/api/runs/{run_id}")["ETag"]
    with django_assert_max_num_queries(3):  # the session, the user, the run's state
        assert client.get(f"/api/runs/{run_id}", HTTP_IF_NONE_MATCH=tag).status_code == 304


def test_cancel_by_its_creator_or_staff(launcher, staff, django_user_model, make_task):
    make_task()
    make_task()
    run_id = new_run(login(launcher)).json()["id"]
    other = django_user_model.objects.create_user("olga", password="pw-olga-123")
    other.user_permissions.add(Permission.objects.get(codename="launch_run"))
    assert post(login(other), f"/api/runs/{run_id}/cancel").status_code == 403
    response = post(login(launcher), f"/api/runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["counts"]["cancelled"] == 2
    assert set(LLMJob.objects.filter(run_id=run_id).values_list("status", flat=True)) == {"cancelled"}
    again = post(login(staff), f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_launch_now_makes_a_child_of_a_scheduled_run(staff, make_task):
    make_task()
    client = login(staff)
    scheduled = new_run(client, schedule="0 6 * * 1").json()
    assert scheduled["status"] == "scheduled" and scheduled["next_run_at"] and scheduled["counts"]["queued"] == 0
    child = post(client, f"/api/runs/{scheduled['id']}/launch")
    assert child.status_code == 201 and child.json()["parent"] == scheduled["id"]
    assert child.json()["status"] == "running" and child.json()["counts"]["queued"] == 1
    not_scheduled = post(client, f"/api/runs/{child.json()['id']}/launch")
    assert not_scheduled.status_code == 409
