"""The poll endpoint: shape, ETag/304 from one cheap query, a changed poll
in a fixed number of queries whatever the number of jobs, cut outputs."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from eval.jobs import batch, claims, create, transitions
from eval.models import ApiToken, LLMJob
from tests.helpers import login

pytestmark = pytest.mark.django_db

# A logged-in session costs 2 queries before the view (session row, user row).
SESSION_QUERIES = 2


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def add_jobs(task, user, n, output=""):
    jobs = [
        LLMJob(task=task, created_by=user, provider="echo", model="echo", available_at=task.created_at, output=output)
        for _ in range(n)
    ]
    LLMJob.objects.bulk_create(jobs)
    return jobs


def test_poll_shape(reviewer, task):
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    response = login(reviewer).get(f"/api/tasks/{task.id}/jobs")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task", "jobs", "all_terminal"}
    assert body["task"] == task.id and body["all_terminal"] is False
    assert [j["id"] for j in body["jobs"]] == [str(job.pk)]
    assert response["ETag"].startswith('"') and "no-cache" in response["Cache-Control"]


def test_poll_with_no_jobs_is_all_terminal(reviewer, task):
    body = login(reviewer).get(f"/api/tasks/{task.id}/jobs").json()
    assert body == {"task": task.id, "jobs": [], "all_terminal": True}


def test_poll_jobs_in_creation_order_and_all_terminal(reviewer, task):
    jobs = [create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)[0] for _ in range(3)]
    client = login(reviewer)
    assert [j["id"] for j in client.get(f"/api/tasks/{task.id}/jobs").json()["jobs"]] == [str(j.pk) for j in jobs]
    for job in jobs:
        transitions.request_cancel(job.pk, by="alice")
    assert client.get(f"/api/tasks/{task.id}/jobs").json()["all_terminal"] is True


def test_unchanged_poll_is_304_and_any_change_is_200(reviewer, task):
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    etag = client.get(url)["ETag"]
    unchanged = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == etag
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304

    # Progress (a version bump) changes the tag.
    claimed = claims.claim(job.pk, "w1").job
    after_claim = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert after_claim.status_code == 200 and after_claim["ETag"] != etag
    etag = after_claim["ETag"]
    batch.record_progress("w1", [batch.ProgressUpdate(job.pk, claimed.attempt, 40, "Generating", "one two", 2)])
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["jobs"][0]["output"] == "one two"
    etag = changed["ETag"]
    # A new job changes it too.
    create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_etag_differs_per_user(reviewer, staff, task):
    create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    mine = login(reviewer).get(url)
    theirs = login(staff).get(url, HTTP_IF_NONE_MATCH=mine["ETag"])
    # can_cancel differs between them, so the tag must too.
    assert theirs.status_code == 200 and theirs["ETag"] != mine["ETag"]


def test_outputs_are_cut_and_the_rest_comes_from_output_from(reviewer, task, settings):
    settings.POLL_OUTPUT_CHARS = 50
    text = "".join(f"line {n}\n" for n in range(40))
    add_jobs(task, reviewer, 1, output=text)
    client = login(reviewer)
    job = client.get(f"/api/tasks/{task.id}/jobs").json()["jobs"][0]
    assert job["output"] == text[:50] and job["output_truncated"] is True
    rest = client.get(f"/api/jobs/{job['id']}?output_from=50").json()
    assert job["output"] + rest["output"] == text and rest["output_truncated"] is False


def test_short_outputs_are_not_marked_truncated(reviewer, task, settings):
    settings.POLL_OUTPUT_CHARS = 50
    add_jobs(task, reviewer, 1, output="x" * 50)
    job = login(reviewer).get(f"/api/tasks/{task.id}/jobs").json()["jobs"][0]
    assert job["output"] == "x" * 50 and job["output_truncated"] is False


def test_unicode_outputs_are_cut_by_characters(reviewer, task, settings):
    settings.POLL_OUTPUT_CHARS = 3
    add_jobs(task, reviewer, 1, output="żółw🐢ok")
    client = login(reviewer)
    job = client.get(f"/api/tasks/{task.id}/jobs").json()["jobs"][0]
    assert job["output"] == "żół" and job["output_truncated"]
    assert client.get(f"/api/jobs/{job['id']}?output_from=3").json()["output"] == "w🐢ok"


def poll_sql(client, url, **headers):
    """The answer to one GET and the SQL it ran."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    return response, [query["sql"] for query in ctx.captured_queries]


SEEN_INSERT = 1


def count_queries(client, url, **headers):
    response, sql = poll_sql(client, url, **headers)
    return response, len(sql)


def unchanged_poll_sql(client, url):
    """The SQL of an unchanged poll (the one answered 304)."""
    response, sql = poll_sql(client, url, HTTP_IF_NONE_MATCH=client.get(url)["ETag"])
    assert response.status_code == 304
    return sql


@pytest.mark.parametrize("n_jobs", [10, 100])
def test_changed_poll_takes_two_queries_whatever_the_number_of_jobs(reviewer, task, n_jobs, django_assert_num_queries):
    add_jobs(task, reviewer, n_jobs, output="o" * 4000)
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    # + 1: recording that the caller has seen the jobs (blind verdicts); outside a
    # test's transaction a process does it once per caller and task (eval/evaluation/seen.py).
    with django_assert_num_queries(SESSION_QUERIES + 2 + SEEN_INSERT):
        response = client.get(url)
    assert response.status_code == 200 and len(response.json()["jobs"]) == n_jobs
    with django_assert_num_queries(SESSION_QUERIES + 1):
        unchanged = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
    assert unchanged.status_code == 304


def test_query_counts_for_10_and_100_jobs_are_equal(reviewer, make_task):
    small, large = make_task(), make_task()
    add_jobs(small, reviewer, 10, output="a" * 4000)
    add_jobs(large, reviewer, 100, output="b" * 4000)
    client = login(reviewer)
    counts = {}
    for task in (small, large):
        url = f"/api/tasks/{task.id}/jobs"
        changed, changed_count = count_queries(client, url)
        unchanged, unchanged_count = count_queries(client, url, HTTP_IF_NONE_MATCH=changed["ETag"])
        assert unchanged.status_code == 304
        counts[task.id] = (changed_count, unchanged_count)
    assert counts[small.id] == counts[large.id] == (SESSION_QUERIES + 2 + SEEN_INSERT, SESSION_QUERIES + 1)


def test_the_304_path_is_one_raw_statement_on_the_job_table(reviewer, task):
    add_jobs(task, reviewer, 3)
    view_queries = unchanged_poll_sql(login(reviewer), f"/api/tasks/{task.id}/jobs")[SESSION_QUERIES:]
    assert len(view_queries) == 1
    assert "eval_llmjob" in view_queries[0] and "review_task" in view_queries[0]


def test_staff_poll_skips_the_permission_join(staff, task):
    add_jobs(task, staff, 2)
    assert "review_task" not in unchanged_poll_sql(login(staff), f"/api/tasks/{task.id}/jobs")[-1]


def test_poll_with_a_token_costs_the_same(reviewer, task):
    add_jobs(task, reviewer, 10)
    _, raw = ApiToken.issue(reviewer, "poller")
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    url = f"/api/tasks/{task.id}/jobs"
    first = client.get(url, **auth)  # also stamps last_used_at
    # token+user in one query, then the poll.
    response, n = count_queries(client, url, HTTP_IF_NONE_MATCH=first["ETag"], **auth)
    assert response.status_code == 304 and n == 2


def test_reviewer_who_loses_the_permission_gets_404(reviewer, task):
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    etag = client.get(url)["ETag"]
    reviewer.groups.clear()
    response = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_direct_permission_counts_as_reviewer(outsider, reviewer, task):
    outsider.user_permissions.add(*reviewer.groups.get().permissions.all())
    assert login(outsider).get(f"/api/tasks/{task.id}/jobs").status_code == 200


def test_inactive_session_user_is_401(reviewer, task):
    client = login(reviewer)
    reviewer.is_active = False
    reviewer.save()
    assert client.get(f"/api/tasks/{task.id}/jobs").status_code == 401
