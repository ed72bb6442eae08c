"""The contract at every edge (issue: integrity under misuse): money within
what the database holds, search text and id lists within what a URL may carry,
chunked bodies read, integers beyond 64 bits in free-form bodies refused,
multipart bodies on /api/ never a 500."""

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from coreproject.chunked_bodies import ChunkedBodies
from coreproject.wsgi import application
from eval.api.run_schemas import MAX_USD
from eval.api.schemas import MAX_SEARCH_CHARS
from eval.models import ApiToken, ReviewDraft, Run
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("field", ["max_cost_usd", "confirm_cost_usd"])
@pytest.mark.parametrize("amount", [1_000_000, 10**12, 1e300])
def test_money_beyond_the_column_is_invalid_not_a_500(staff, field, amount):
    response = post_json(login(staff), "/api/runs", {"name": "r", "provider": "echo", "model": "echo", field: amount})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid" and response.json()["error"]["field"] == field
    assert not Run.objects.exists()


def test_the_largest_amount_the_column_holds_is_taken(staff, make_task):
    make_task()
    body = {"name": "r", "provider": "echo", "model": "echo", "max_cost_usd": MAX_USD}
    response = post_json(login(staff), "/api/runs", body)
    assert response.status_code == 201, response.content
    assert float(Run.objects.get().max_cost_usd) == pytest.approx(999_999.999999)


def test_the_schema_states_the_money_bound():
    schema = Client().get("/api/openapi.json")
    if schema.status_code != 200:  # the schema needs a caller
        return
    assert "999999.999999" in schema.content.decode()


def test_a_search_over_the_limit_is_invalid(reviewer):
    client = login(reviewer)
    assert client.get("/api/tasks", {"q": "é" * MAX_SEARCH_CHARS}).status_code == 200
    response = client.get("/api/tasks", {"q": "x" * (MAX_SEARCH_CHARS + 1)})
    assert response.status_code == 400 and response.json()["error"]["field"] == "q"


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_draft_integers_beyond_64_bits_are_invalid(reviewer, task, number):
    raw = f'{{"rating": 3, "nested": {{"n": {number}}}}}'
    response = login(reviewer).put(f"/api/tasks/{task.pk}/draft", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "nested.n is an integer beyond 64 bits",
        "field": "nested.n",
    }
    assert not ReviewDraft.objects.exists()


def test_draft_integers_at_the_64_bit_edges_are_kept(reviewer, task):
    raw = json.dumps({"big": 2**63 - 1, "small": -(2**63)})
    response = login(reviewer).put(f"/api/tasks/{task.pk}/draft", raw, content_type="application/json")
    assert response.status_code == 200, response.content
    assert ReviewDraft.objects.get().data == {"big": 2**63 - 1, "small": -(2**63)}


MULTIPART = "multipart/form-data; boundary=BoUnDaRy"
FORM = (
    b'--BoUnDaRy\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
    b'{"id": "1"}\r\n--BoUnDaRy--\r\n'
)


@pytest.mark.parametrize("url", ["/api/runs", "/api/tasks/1/draft", "/api/no-such-thing", "/api/jobs/x/cancel"])
def test_a_multipart_body_with_a_session_is_never_a_500(staff, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    client.get("/")  # a CSRF cookie
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    response = client.generic("POST", url, FORM, content_type=MULTIPART, HTTP_X_CSRFTOKEN=token)
    assert response.status_code in {400, 403, 404, 405}, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"


def test_a_multipart_body_where_json_is_expected_says_so(staff):
    client = login(staff)
    response = client.generic("POST", "/api/runs", FORM, content_type=MULTIPART)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


@pytest.fixture
def _keep_test_connection():
    """As Django's test client does: the handler must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _wsgi(method, path, body, **headers):
    """The deployed WSGI application called as gunicorn calls it for a chunked
    body: already decoded in wsgi.input, no CONTENT_LENGTH."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "https",  # the application was built before the test settings (no SSL redirect)
        "SERVER_PORT": "443",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.input_terminated": True,
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        **headers,
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    content = b"".join(application(environ, start_response))
    return answer["status"], json.loads(content or b"null")


def test_a_chunked_json_body_is_read(staff, make_task, _keep_test_connection):
    make_task()
    _, raw = ApiToken.issue(staff, "ci")
    body = json.dumps({"name": "chunked", "provider": "echo", "model": "echo"}).encode()
    status, data = _wsgi("POST", "/api/runs", body, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert status == 201, (status, data)
    assert Run.objects.get().name == "chunked"


def test_a_chunked_body_over_the_api_limit_is_413(staff, settings, _keep_test_connection):
    settings.API_MAX_BODY_BYTES = 2048
    _, raw = ApiToken.issue(staff, "ci")
    body = json.dumps({"name": "x" * 5000, "provider": "echo", "model": "echo"}).encode()
    status, data = _wsgi("POST", "/api/runs", body, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert status == 413 and data["error"]["code"] == "too_large"
    assert not Run.objects.exists()


def test_a_chunked_body_over_every_limit_is_refused_without_reading_it_all(settings):
    settings.API_MAX_BODY_BYTES = settings.DATASET_MAX_UPLOAD_BYTES = 4096
    stream = io.BytesIO(b"x" * 1_000_000)
    reached = []
    middleware = ChunkedBodies(lambda environ, start: reached.append(environ) or [b""])
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream}
    statuses = []
    body = b"".join(middleware(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["413 Request Entity Too Large"] and not reached
    assert json.loads(body)["error"]["code"] == "too_large"
    assert stream.tell() < 200_000  # stopped soon after the limit


def test_a_body_with_a_length_passes_through_untouched():
    stream = io.BytesIO(b"{}")
    seen = []
    middleware = ChunkedBodies(lambda environ, start: seen.append(environ["wsgi.input"]) or [b""])
    list(middleware({"CONTENT_LENGTH": "2", "wsgi.input": stream}, None))
    assert seen == [stream]


def _big_form(size):
    head = b'--BoUnDaRy\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
    return head + b"x" * size + b"\r\n--BoUnDaRy--\r\n"


def test_a_big_multipart_body_is_413_except_for_a_dataset_upload(staff, settings):
    settings.API_MAX_BODY_BYTES = 4096
    settings.DATASET_MAX_UPLOAD_BYTES = 100_000
    client = login(staff)
    response = client.generic("POST", "/api/runs", _big_form(10_000), content_type=MULTIPART)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    upload = client.generic("POST", "/api/datasets/mine/imports", _big_form(10_000), content_type=MULTIPART)
    assert upload.status_code != 413, upload.content[:200]
    too_big = client.generic("POST", "/api/datasets/mine/imports", _big_form(200_000), content_type=MULTIPART)
    assert too_big.status_code == 413
