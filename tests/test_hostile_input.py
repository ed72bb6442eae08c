"""Hostile input is a 400 ``invalid`` in DESIGN's error shape, never a 500:
bodies nested too deeply, NUL characters (PostgreSQL text cannot store them),
lone surrogates (no UTF-8 spelling), non-finite numbers, and query values the
database cannot take (NUL, integers beyond its range). Both the django-ninja
endpoints and the plain poll view go through the same checks
(eval/api/request_data.py)."""

import json
import logging

import pytest
from django.test import Client

from eval.api import app as api_app
from eval.api import plain
from eval.api.request_data import MAX_JSON_DEPTH
from eval.api.schemas import MAX_OUTPUT_FROM
from eval.jobs import create
from eval.models import ApiToken, LLMJob, Review
from tests.helpers import login

pytestmark = pytest.mark.django_db

HUGE = "1" + "0" * 29  # 30 digits: far beyond a 64-bit integer


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def nested(depth, leaf='"x"'):
    return "[" * depth + leaf + "]" * depth


def assert_invalid(response, field=None):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"], error
    assert set(error) <= {"code", "message", "field"}
    if field is not None:
        assert error.get("field") == field, error
    return error


def send(client, method, url, raw, **headers):
    return client.generic(method, url, raw.encode("utf-8", "surrogatepass"), content_type="application/json", **headers)


@pytest.fixture
def job(task, reviewer):
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    return job


# --- bodies ------------------------------------------------------------------------------

DEEP = [MAX_JSON_DEPTH + 1, 1_000, 5_000, 100_000]


@pytest.mark.parametrize("depth", DEEP)
def test_deeply_nested_bodies_are_invalid(reviewer, task, depth):
    client = login(reviewer)
    assert_invalid(send(client, "PUT", f"/api/tasks/{task.id}/draft", '{"data": ' + nested(depth) + "}"))
    body = '{"provider": "echo", "model": "echo", "params": {"system": ' + nested(depth) + "}}"
    assert_invalid(send(client, "POST", f"/api/tasks/{task.id}/jobs", body))
    assert_invalid(send(client, "PUT", f"/api/tasks/{task.id}/review", '{"notes": ' + nested(depth) + "}"))
    assert not LLMJob.objects.exists() and not Review.objects.exists()


def test_nesting_up_to_the_limit_is_kept(reviewer, task):
    client = login(reviewer)
    data = nested(MAX_JSON_DEPTH - 1)  # the object around it is one more level
    response = send(client, "PUT", f"/api/tasks/{task.id}/draft", '{"data": ' + data + "}")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["data"]["data"] == json.loads(data)


BAD_TEXT = {"nul": "a\\u0000b", "lone surrogate": "a\\ud800b", "lone low surrogate": "\\udfff"}


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT)
def test_text_postgresql_or_utf8_cannot_hold_is_invalid(reviewer, task, job, text):
    client = login(reviewer)
    assert_invalid(send(client, "PUT", f"/api/tasks/{task.id}/review", f'{{"notes": "{text}"}}'))
    body = f'{{"provider": "echo", "model": "echo", "params": {{"system": "{text}"}}}}'
    assert_invalid(send(client, "POST", f"/api/tasks/{task.id}/jobs", body))
    assert_invalid(send(client, "PUT", f"/api/tasks/{task.id}/draft", f'{{"data": {{"{text}": 1}}}}'))
    assert_invalid(send(client, "PUT", f"/api/tasks/{task.id}/draft", f'{{"data": ["{text}"]}}'))
    body = f'{{"kind": "score", "jobs": ["{job.pk}"], "answers": {{"quality": 3}}, "notes": "{text}"}}'
    assert_invalid(send(client, "POST", f"/api/tasks/{task.id}/judgements", body))
    assert LLMJob.objects.count() == 1 and not Review.objects.exists()


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT)
def test_run_bodies_with_bad_text_are_invalid(staff, text):
    body = f'{{"name": "{text}", "provider": "echo", "model": "echo", "schedule": "0 6 * * 1"}}'
    assert_invalid(send(login(staff), "POST", "/api/runs", body))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_invalid(reviewer, task, number):
    body = f'{{"provider": "echo", "model": "echo", "params": {{"temperature": {number}}}}}'
    assert_invalid(send(login(reviewer), "POST", f"/api/tasks/{task.id}/jobs", body))
    assert not LLMJob.objects.exists()


def test_bodies_that_are_not_utf8_are_invalid(reviewer, task):
    response = login(reviewer).generic(
        "PUT", f"/api/tasks/{task.id}/review", b'{"notes": "\xff\xfe"}', content_type="application/json"
    )
    assert_invalid(response)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "r", "provider": "echo", "model": "echo", "tasks": {"ids": [int(HUGE)]}}, "tasks.ids.0"),
        ({"name": "r", "provider": "echo", "model": "echo", "tasks": {"limit": int(HUGE)}}, "tasks.limit"),
        ({"name": "r", "provider": "echo", "model": "echo", "judge": {"rubric": int(HUGE)}}, "judge.rubric"),
        ({"name": "r", "provider": "echo", "model": "echo", "judge": {"score": int(HUGE)}}, "judge.score"),
        ({"name": "r", "provider": "echo", "model": "echo", "params": {"max_tokens": int(HUGE)}}, "params.max_tokens"),
    ],
)
def test_body_integers_beyond_the_database_are_invalid(staff, body, field):
    assert_invalid(send(login(staff), "POST", "/api/runs", json.dumps(body)), field)


def test_a_bearer_caller_gets_the_same_answers(reviewer, task):
    _, token = ApiToken.issue(reviewer, "hostile")
    response = send(
        Client(), "PUT", f"/api/tasks/{task.id}/review", '{"notes": "\\u0000"}', HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert_invalid(response)


def test_an_anonymous_caller_is_refused_before_the_body_is_read(task):
    response = send(Client(), "PUT", f"/api/tasks/{task.id}/review", '{"notes": ' + nested(100_000) + "}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


# --- query values and headers ----------------------------------------------------------------


def test_nul_in_the_task_search_is_invalid(reviewer, task):
    assert_invalid(login(reviewer).get("/api/tasks?q=a%00b"), "q")


@pytest.mark.parametrize(
    "url, field",
    [
        ("/api/tasks?after=" + HUGE, "after"),
        ("/api/tasks?after=9223372036854775808", "after"),
        ("/api/runs?after=" + HUGE, "after"),
        ("/api/pairs/next?source=a%00b", "source"),
        ("/api/tasks?status=open&x%00=1", "x\ufffd"),
    ],
)
def test_query_values_the_database_cannot_take_are_invalid(reviewer, url, field):
    assert_invalid(login(reviewer).get(url), field)


@pytest.mark.parametrize("value", [HUGE, str(2**63), str(MAX_OUTPUT_FROM + 1)])
def test_output_from_beyond_the_database_is_invalid(reviewer, job, value):
    assert_invalid(login(reviewer).get(f"/api/jobs/{job.pk}?output_from={value}"), "output_from")


def test_output_from_at_the_largest_position_is_an_empty_rest(reviewer, job):
    response = login(reviewer).get(f"/api/jobs/{job.pk}?output_from={MAX_OUTPUT_FROM}")
    assert response.status_code == 200 and response.json()["output"] == ""


@pytest.mark.parametrize(
    "url",
    ["/api/results?source=a%00b", "/api/exports/tasks.csv?source=a%00b", "/api/exports/pairs.jsonl?source=%00"],
)
def test_staff_queries_with_nul_are_invalid(staff, url):
    assert_invalid(login(staff).get(url), "source")


def test_the_plain_poll_view_checks_the_query_too(reviewer, task):
    assert_invalid(login(reviewer).get(f"/api/tasks/{task.id}/jobs?since=%00"), "since")


def test_nul_in_the_idempotency_key_is_invalid(reviewer, task):
    response = login(reviewer).post(
        f"/api/tasks/{task.id}/jobs",
        json.dumps({"provider": "echo", "model": "echo"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="a\x00b",
    )
    assert_invalid(response, "Idempotency-Key")
    assert not LLMJob.objects.exists()


def test_path_ids_beyond_the_database_or_with_nul_are_not_found(reviewer):
    client = login(reviewer)
    for url in (f"/api/tasks/{HUGE}/jobs", f"/api/runs/{HUGE}", f"/api/tasks/{2**63}/review"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", url
    response = client.delete(f"/api/judgements/{HUGE}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    for url in ("/api/pairs/a%00b/skip", "/api/tasks/%00/review", "/api/jobs/%00"):
        response = client.post(url) if url.endswith("skip") else client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", url


# --- whatever slips through is still JSON ---------------------------------------------------


def test_an_unexpected_error_is_a_json_500(reviewer, task, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api_app.reviews, "visible_task", broken)
    client = login(reviewer)
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR):
        response = client.get(f"/api/tasks/{task.id}/review")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "server_error", "message": "internal server error"}}
    assert "boom" in caplog.text  # logged with its traceback, not shown to the caller


def test_an_unexpected_error_in_the_plain_poll_is_a_json_500(reviewer, task, monkeypatch):

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(plain, "poll_state", broken)
    client = login(reviewer)
    client.raise_request_exception = False
    response = client.get(f"/api/tasks/{task.id}/jobs")
    assert response.status_code == 500 and response.json()["error"]["code"] == "server_error"
