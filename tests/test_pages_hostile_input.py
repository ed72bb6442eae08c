"""The HTML pages refuse what the API refuses in a query string (eval/api/request_data.py):
NUL characters, and ids beyond the database's range, are a 400 page in the site's
frame ("Bad request: <why>"), never a 500. Ids that are not digits are ignored, as
before (a page reads what it can)."""

import logging

import pytest
from django.test import Client

from eval.models import Run
from eval.storable import BIGINT_MAX
from tests.helpers import login

pytestmark = pytest.mark.django_db

HUGE = "1" + "0" * 29  # 30 digits: far beyond a 64-bit integer
NUL_TEXT = "holds a NUL character or a lone surrogate"


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def boss(staff, reviewer):
    """Staff and a reviewer: every page opens for them."""
    staff.groups.add(*reviewer.groups.all())
    return staff


@pytest.fixture
def client(boss):
    client = login(boss)
    client.raise_request_exception = False  # a 500 is an answer to assert on, not an exception
    return client


def assert_bad_request(response, reason):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert f"Bad request: {reason}" in html, html
    assert 'class="brand"' in html and "sam" in html  # the site's frame, signed in
    return html


def page_urls(task):
    run = Run.objects.create(name="a run", provider="echo", model="echo")
    return [
        "/",
        "/tasks/",
        f"/tasks/{task.pk}/",
        "/pairs/",
        "/runs/",
        f"/runs/{run.pk}/",
        "/results/",
        "/judgements/",
        "/dashboard/",
        "/tokens/",
    ]


def test_it_refuses_nul_in_the_task_search(client, task):
    """On PostgreSQL this reached the database: text cannot hold NUL (a 500)."""
    for url in ("/tasks/?q=a%00b", "/?q=a%00b", "/tasks/?q=a%00b&status=open&review=needed"):
        assert_bad_request(client.get(url), f"q {NUL_TEXT}")


def test_every_page_refuses_nul_in_any_query_value_or_name(client, task):
    for url in page_urls(task):
        assert_bad_request(client.get(url + "?source=a%00b"), f"source {NUL_TEXT}")
        assert_bad_request(client.get(url + "?x%00=1"), f"x\ufffd {NUL_TEXT}")
        assert client.get(url + "?source=ab").status_code == 200, url


def test_the_token_form_refuses_nul_in_its_query_too(client):
    response = client.post("/tokens/?next=%00", {"name": "laptop"})
    assert_bad_request(response, f"next {NUL_TEXT}")
    assert not client.get("/tokens/").context["tokens"]


@pytest.mark.parametrize("name", ["after", "before"])
@pytest.mark.parametrize("value", [HUGE, str(BIGINT_MAX + 1), "9" * 5000])
def test_task_list_cursors_beyond_the_database_are_refused(client, task, name, value):
    assert_bad_request(client.get(f"/tasks/?{name}={value}"), f"{name} is beyond the largest id")


@pytest.mark.parametrize("name", ["after", "before"])
@pytest.mark.parametrize("value", [str(BIGINT_MAX), "0" * 30 + "5", "\u00b2", "\u0661", "abc", "-1", ""])
def test_task_list_cursors_in_range_or_not_digits_are_read_or_ignored(client, task, name, value):
    response = client.get("/tasks/", {name: value})
    assert response.status_code == 200, (value, response.content[:300])


def test_the_largest_cursor_pages_past_every_task(client, task):
    assert task.title in client.get("/tasks/?after=0").content.decode()
    assert task.title not in client.get(f"/tasks/?after={BIGINT_MAX}").content.decode()


@pytest.mark.parametrize("runs", [HUGE, f"1,{BIGINT_MAX + 1}", "9" * 5000])
def test_results_refuse_run_ids_beyond_the_database(client, runs):
    assert_bad_request(client.get(f"/results/?runs={runs}"), "runs is beyond the largest id")


def test_results_ignore_run_ids_that_are_not_digits(client):
    response = client.get("/results/?runs=\u00b2,2,x&runs=\u0661")
    assert response.status_code == 200
    assert 'data-results-url="/api/results?runs=2"' in response.content.decode()


def test_a_refusal_is_one_info_line_not_an_error(client, caplog):
    with caplog.at_level(logging.INFO):
        assert_bad_request(client.get("/tasks/?q=%00"), f"q {NUL_TEXT}")
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if "Bad request" in r.getMessage()]
    assert lines == [
        ("eval.pages", logging.INFO, f"Bad request: /tasks/: q {NUL_TEXT} (text must be valid Unicode without NUL)")
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_anonymous_visitors_are_sent_to_login_first(db):
    response = Client().get("/tasks/?q=%00")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_other_bad_requests_get_the_page_without_detail(db):
    """handler400 serves every 400: a Host header not allowed says nothing of the host."""
    response = Client().get("/tasks/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Bad request: the request was malformed." in html and "evil.example" not in html
