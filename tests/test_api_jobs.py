"""Job endpoints: create (validation, idempotency, rate limits), read,
list by ids, cancel, retry, and who may do what."""

import json
import uuid

import pytest

from eval.evaluation.runs import services as runs
from eval.jobs import claims, create, endings, transitions
from eval.models import JobStatus, LLMJob
from tests.helpers import login

pytestmark = pytest.mark.django_db

JOB_FIELDS = {
    "id",
    "kind",
    "task",
    "provider",
    "model",
    "status",
    "progress",
    "message",
    "output",
    "output_truncated",
    "error",
    "attempts",
    "usage",
    "cost_usd",
    "stop_reason",
    "cancel_requested",
    "terminal",
    "can_cancel",
    "can_retry",
    "retry_of",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    # Evaluation (DESIGN: LLMJob gains prompt_hash and hidden)
    "hidden",
    "can_hide",
    "params",
    "from_current_prompt",
    "messages",
    # Templates (DESIGN "Datasets, templates...")
    "template",
    "template_name",
    "messages_sent",
}


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def post(client, url, body=None, **headers):
    return client.post(url, json.dumps(body) if body is not None else "", content_type="application/json", **headers)


def error(response):
    return response.json()["error"]


def run_to_end(job, *, output="done", fail_code=None, worker="w1"):
    """Drive a queued job through the lifecycle as a worker would."""
    claimed = claims.claim(job.pk, worker).job
    assert claimed is not None
    if fail_code:
        endings.fail(job.pk, worker, claimed.attempt, code=fail_code, message="boom")
    else:
        endings.succeed_one(job.pk, worker, claimed.attempt, output=output, stop_reason="end_turn", output_tokens=3)
    job.refresh_from_db()
    return job


def make_job(task, user, **kwargs):
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=user, **kwargs)
    return job


# --- create -----------------------------------------------------------------------------


def test_create_job_returns_201_with_location_and_exact_fields(reviewer, task):
    response = post(login(reviewer), f"/api/tasks/{task.id}/jobs", {"provider": "echo", "model": "echo"})
    assert response.status_code == 201
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert response["Location"] == f"/api/jobs/{job['id']}"
    assert job["id"] == job["id"].lower() and uuid.UUID(job["id"])
    assert job["status"] == "queued" and job["task"] == task.id and job["kind"] == "generate"
    assert job["created_by"] == "alice" and job["can_cancel"] and not job["can_retry"] and not job["terminal"]
    assert job["error"] is None and job["usage"] == {"input_tokens": None, "output_tokens": None}
    row = LLMJob.objects.get()
    assert row.params == {"max_tokens": 1024} and row.created_by == reviewer


@pytest.mark.parametrize(
    "body, field",
    [
        ({"model": "echo"}, "provider"),
        ({"provider": "nope", "model": "echo"}, "provider"),
        ({"provider": "echo"}, "model"),
        ({"provider": "echo", "model": "gpt-0"}, "model"),
        ({"provider": "echo", "model": "echo", "params": {"top_k": 3}}, "params"),
        ({"provider": "echo", "model": "echo", "params": {"max_tokens": 0}}, "params.max_tokens"),
        ({"provider": "echo", "model": "echo", "params": {"max_tokens": 10**6}}, "params.max_tokens"),
        ({"provider": "echo", "model": "echo", "params": {"temperature": "hot"}}, "params.temperature"),
        ({"provider": "echo", "model": "echo", "params": []}, "params"),
        ({"provider": "echo", "model": "echo", "priority": 99}, "priority"),
    ],
)
def test_create_job_validation_is_400_with_field(reviewer, task, body, field):
    response = post(login(reviewer), f"/api/tasks/{task.id}/jobs", body)
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "invalid"
    assert error(response)["field"] == field
    assert not LLMJob.objects.exists()


def test_create_job_accepts_documented_params(reviewer, task):
    body = {"provider": "echo", "model": "echo", "params": {"max_tokens": 5, "temperature": 0.5, "system": "be brief"}}
    response = post(login(reviewer), f"/api/tasks/{task.id}/jobs", body)
    assert response.status_code == 201
    assert LLMJob.objects.get().params == {"max_tokens": 5, "temperature": 0.5, "system": "be brief"}


def test_idempotency_key_replays_and_conflicts(reviewer, outsider, task, make_task):
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    first = post(client, url, {"provider": "echo", "model": "echo"}, HTTP_IDEMPOTENCY_KEY="k-1")
    replay = post(client, url, {"provider": "echo", "model": "echo"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201 and replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]
    other = post(
        client, url, {"provider": "echo", "model": "echo", "params": {"max_tokens": 7}}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 409 and error(other)["code"] == "idempotency_conflict"
    elsewhere = post(
        client, f"/api/tasks/{make_task().id}/jobs", {"provider": "echo", "model": "echo"}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert elsewhere.status_code == 409
    assert LLMJob.objects.count() == 1
    # Keys are scoped per user.
    staff_like = outsider
    staff_like.is_staff = True
    staff_like.save()
    theirs = post(login(staff_like), url, {"provider": "echo", "model": "echo"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


def test_idempotency_key_too_long_is_400(reviewer, task):
    response = post(
        login(reviewer),
        f"/api/tasks/{task.id}/jobs",
        {"provider": "echo", "model": "echo"},
        HTTP_IDEMPOTENCY_KEY="k" * 201,
    )
    assert response.status_code == 400 and error(response)["field"] == "Idempotency-Key"


def test_job_creation_is_rate_limited_per_user(reviewer, staff, task, settings):
    settings.JOB_CREATE_RATE = (3, 60)
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    for n in range(3):
        assert post(client, url, {"provider": "echo", "model": "echo"}, HTTP_IDEMPOTENCY_KEY=f"k{n}").status_code == 201
    response = post(client, url, {"provider": "echo", "model": "echo"})
    assert response.status_code == 429
    assert error(response)["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # A replay of an earlier request is not a new job: still answered.
    assert post(client, url, {"provider": "echo", "model": "echo"}, HTTP_IDEMPOTENCY_KEY="k0").status_code == 200
    # Another user has their own budget.
    assert post(login(staff), url, {"provider": "echo", "model": "echo"}).status_code == 201
    assert LLMJob.objects.filter(created_by=reviewer).count() == 3


def test_queued_jobs_per_user_are_capped(reviewer, task, settings):
    settings.MAX_QUEUED_JOBS_PER_USER = 2
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    assert post(client, url, {"provider": "echo", "model": "echo"}).status_code == 201
    assert post(client, url, {"provider": "echo", "model": "echo"}).status_code == 201
    response = post(client, url, {"provider": "echo", "model": "echo"})
    assert response.status_code == 429 and error(response)["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0
    transitions.request_cancel(LLMJob.objects.first().pk, by="alice")
    assert post(client, url, {"provider": "echo", "model": "echo"}).status_code == 201


def test_a_queued_run_does_not_use_up_the_per_user_cap(staff, make_task, settings):

    settings.MAX_QUEUED_JOBS_PER_USER = 2
    settings.JOB_CREATE_RATE = (2, 60)
    for _ in range(3):
        make_task()
    run = runs.create_run(user=staff, data={"name": "bulk", "provider": "echo", "model": "echo", "tasks": {}})
    assert LLMJob.objects.filter(run=run, status="queued").count() == 3  # over both limits
    url = f"/api/tasks/{make_task().id}/jobs"
    assert post(login(staff), url, {"provider": "echo", "model": "echo"}).status_code == 201


def test_outsider_cannot_create_or_see(outsider, task):
    client = login(outsider)
    response = post(client, f"/api/tasks/{task.id}/jobs", {"provider": "echo", "model": "echo"})
    assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert not LLMJob.objects.exists()


@pytest.mark.parametrize("task_id", ["999999", "abc", "0", "-1", "1.0", "01"])
def test_unknown_or_malformed_task_is_json_404(reviewer, task, task_id):
    client = login(reviewer)
    for response in (
        client.get(f"/api/tasks/{task_id}/jobs"),
        post(client, f"/api/tasks/{task_id}/jobs", {"provider": "echo", "model": "echo"}),
        client.get(f"/api/tasks/{task_id}/review"),
    ):
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"


# --- read --------------------------------------------------------------------------------


def test_get_job_full_output_and_output_from(reviewer, task, settings):
    settings.POLL_OUTPUT_CHARS = 10
    job = run_to_end(make_job(task, reviewer), output="0123456789abcdefghij")
    client = login(reviewer)
    whole = client.get(f"/api/jobs/{job.pk}")
    assert whole.status_code == 200 and set(whole.json()) == JOB_FIELDS
    assert whole.json()["output"] == "0123456789abcdefghij" and not whole.json()["output_truncated"]
    rest = client.get(f"/api/jobs/{job.pk}?output_from=10").json()
    assert rest["output"] == "abcdefghij" and rest["output_truncated"] is False
    assert client.get(f"/api/jobs/{job.pk}?output_from=500").json()["output"] == ""
    bad = client.get(f"/api/jobs/{job.pk}?output_from=-3")
    assert bad.status_code == 400 and error(bad)["field"] == "output_from"


def test_get_job_etag_and_304(reviewer, task):
    job = make_job(task, reviewer)
    client = login(reviewer)
    first = client.get(f"/api/jobs/{job.pk}")
    etag = first["ETag"]
    again = client.get(f"/api/jobs/{job.pk}", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    run_to_end(job)
    changed = client.get(f"/api/jobs/{job.pk}", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.parametrize(
    "job_id",
    [
        "not-a-uuid",
        "0B6F7F2E-1C2D-4E5F-8A9B-0C1D2E3F4A5B",
        "0b6f7f2e1c2d4e5f8a9b0c1d2e3f4a5b",
        "5f0c6a8e-2b1d-4c3e-9f7a-1b2c3d4e5f60",
    ],
)
def test_unknown_or_malformed_job_is_json_404(reviewer, job_id):
    client = login(reviewer)
    for response in (client.get(f"/api/jobs/{job_id}"), post(client, f"/api/jobs/{job_id}/cancel")):
        assert response.status_code == 404 and error(response)["code"] == "not_found"


def test_outsider_sees_no_job(outsider, reviewer, task):
    job = make_job(task, reviewer)
    client = login(outsider)
    assert client.get(f"/api/jobs/{job.pk}").status_code == 404
    assert client.get(f"/api/jobs?ids={job.pk}").json() == {"jobs": []}
    assert post(client, f"/api/jobs/{job.pk}/cancel").status_code == 404
    assert post(client, f"/api/jobs/{job.pk}/retry").status_code == 404
    assert client.get(f"/api/tasks/{task.id}/jobs").status_code == 404


def test_jobs_by_ids_in_the_order_asked(reviewer, task, settings):
    settings.POLL_OUTPUT_CHARS = 4
    jobs = [make_job(task, reviewer) for _ in range(3)]
    run_to_end(jobs[0], output="long output")
    missing = str(uuid.uuid4())
    ids = [str(jobs[2].pk), missing, str(jobs[0].pk), str(jobs[1].pk)]
    body = login(reviewer).get("/api/jobs?ids=" + ",".join(ids)).json()
    assert [job["id"] for job in body["jobs"]] == [ids[0], ids[2], ids[3]]
    assert body["jobs"][1]["output"] == "long" and body["jobs"][1]["output_truncated"] is True


def test_jobs_by_ids_refuses_malformed_and_too_many(reviewer):
    client = login(reviewer)
    for query in [
        "",
        "?ids=",
        "?ids=nope",
        f"?ids={uuid.uuid4()},x",
        "?ids=" + ",".join(str(uuid.uuid4()) for _ in range(101)),
    ]:
        response = client.get("/api/jobs" + query)
        assert response.status_code == 400, query
        assert error(response) == {"code": "invalid", "message": error(response)["message"], "field": "ids"}
    assert client.get("/api/jobs?ids=" + ",".join(str(uuid.uuid4()) for _ in range(100))).json() == {"jobs": []}


# --- cancel and retry --------------------------------------------------------------------


def test_cancel_queued_job_at_once(reviewer, task):
    job = make_job(task, reviewer)
    response = post(login(reviewer), f"/api/jobs/{job.pk}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled" and body["cancel_requested"] and body["can_retry"]
    assert body["terminal"] is True
    assert "alice" in body["message"]


def test_cancel_running_job_asks_the_worker(reviewer, task):
    job = make_job(task, reviewer)
    claims.claim(job.pk, "w1")
    body = post(login(reviewer), f"/api/jobs/{job.pk}/cancel").json()
    assert body["status"] == "running" and body["cancel_requested"] is True and body["can_cancel"] is False
    assert body["terminal"] is False  # asked to stop, not stopped yet


def test_cancel_terminal_job_is_409(reviewer, task):
    job = run_to_end(make_job(task, reviewer))
    response = post(login(reviewer), f"/api/jobs/{job.pk}/cancel")
    assert response.status_code == 409 and error(response)["code"] == "conflict"


def test_cancel_and_retry_by_others_is_403_but_staff_may(reviewer, staff, django_user_model, task):
    other = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    other.user_permissions.add(*reviewer.groups.get().permissions.all())
    job = make_job(task, reviewer)
    failed = run_to_end(make_job(task, reviewer), fail_code="bad_request")
    client = login(other)
    assert client.get(f"/api/jobs/{job.pk}").json()["can_cancel"] is False
    response = post(client, f"/api/jobs/{job.pk}/cancel")
    assert response.status_code == 403 and error(response)["code"] == "forbidden"
    response = post(client, f"/api/jobs/{failed.pk}/retry")
    assert response.status_code == 403 and error(response)["code"] == "forbidden"
    staff_client = login(staff)
    assert staff_client.get(f"/api/jobs/{job.pk}").json()["can_cancel"] is True
    assert post(staff_client, f"/api/jobs/{job.pk}/cancel").status_code == 200
    assert post(staff_client, f"/api/jobs/{failed.pk}/retry").status_code == 201


def test_retry_failed_job_makes_a_new_job(reviewer, task):
    failed = run_to_end(make_job(task, reviewer), fail_code="bad_request")
    client = login(reviewer)
    assert client.get(f"/api/jobs/{failed.pk}").json()["error"] == {"code": "bad_request", "message": "boom"}
    response = post(client, f"/api/jobs/{failed.pk}/retry")
    assert response.status_code == 201
    new = response.json()
    assert new["retry_of"] == str(failed.pk) and new["status"] == "queued" and new["id"] != str(failed.pk)
    assert response["Location"] == f"/api/jobs/{new['id']}"
    failed.refresh_from_db()
    assert failed.status == JobStatus.FAILED  # terminal jobs never change


def test_retry_is_409_unless_failed_or_cancelled(reviewer, task):
    client = login(reviewer)
    queued = make_job(task, reviewer)
    done = run_to_end(make_job(task, reviewer))
    for job in (queued, done):
        response = post(client, f"/api/jobs/{job.pk}/retry")
        assert response.status_code == 409 and error(response)["code"] == "conflict"


def test_retry_counts_against_the_rate_limit(reviewer, task, settings):
    failed = run_to_end(make_job(task, reviewer), fail_code="bad_request")
    settings.JOB_CREATE_RATE = (1, 3600)
    response = post(login(reviewer), f"/api/jobs/{failed.pk}/retry")
    assert response.status_code == 429 and response["Retry-After"]
