"""/api/openapi.json and /api/docs: the schema lists every endpoint, a live
server answers each documented operation with one of its documented status
codes (and 2xx bodies in their documented shape), and the docs page loads
nothing from another host."""

import json
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import resolve

from eval.api import plain
from eval.api import urls as api_urls
from eval.models import ApiToken
from tests.helpers import login

pytestmark = pytest.mark.django_db

# DESIGN "HTTP API": every endpoint, as (method, path) of the schema.
DESIGN_ENDPOINTS = {
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{task_id}/jobs"),
    ("post", "/api/tasks/{task_id}/jobs"),
    # A dry run of the create call: what the review page's confirm shows (issue 17, costs).
    ("post", "/api/tasks/{task_id}/jobs/estimate"),
    ("get", "/api/tasks/{task_id}/review"),
    ("put", "/api/tasks/{task_id}/review"),
    ("get", "/api/jobs"),
    ("get", "/api/jobs/{job_id}"),
    ("post", "/api/jobs/{job_id}/cancel"),
    ("post", "/api/jobs/{job_id}/retry"),
    ("get", "/api/models"),
    ("get", "/api/status"),
    # Evaluation
    ("get", "/api/tasks/{task_id}/judgements"),
    ("post", "/api/tasks/{task_id}/judgements"),
    ("get", "/api/judgements"),
    ("delete", "/api/judgements/{judgement_id}"),
    ("get", "/api/tasks/{task_id}/draft"),
    ("put", "/api/tasks/{task_id}/draft"),
    ("delete", "/api/tasks/{task_id}/draft"),
    ("post", "/api/jobs/{job_id}/hide"),
    ("post", "/api/jobs/{job_id}/unhide"),
    ("get", "/api/pairs/next"),
    ("post", "/api/pairs/{token}/verdict"),
    ("post", "/api/pairs/{token}/skip"),
    ("post", "/api/runs"),
    ("get", "/api/runs"),
    ("get", "/api/runs/{run_id}"),
    ("post", "/api/runs/{run_id}/cancel"),
    ("post", "/api/runs/{run_id}/launch"),
    ("get", "/api/runs/{run_id}/jobs"),
    ("get", "/api/runs/compare"),
    ("post", "/api/runs/{run_id}/baseline"),
    ("get", "/api/budget"),
    ("get", "/api/templates"),
    ("post", "/api/templates"),
    ("get", "/api/templates/{template_id}"),
    ("post", "/api/templates/{template_id}/preview"),
    ("post", "/api/templates/preview"),
    ("get", "/api/results"),
    ("get", "/api/exports/{what}.{extension}"),
    # Datasets
    ("get", "/api/datasets"),
    ("get", "/api/datasets/{name}/versions"),
    ("post", "/api/datasets/{name}/imports"),
}
# Bodies that are any JSON object by design (the page's unsaved form).
OPEN_BODIES = {("put", "/api/tasks/{task_id}/draft")}
# URLs under /api/ that are not endpoints: the schema, the docs page, the root (a JSON 404).
NOT_ENDPOINTS = {"api-openapi", "api-docs", "api-root", None}  # None: the JSON 404 for the rest
MALFORMED = {
    "task_id": "01",
    "job_id": "NOT-A-UUID",
    "judgement_id": "x1",
    "token": "not-a-token",
    "run_id": "01",
    "template_id": "01",
    "what": "everything",
    "extension": "xml",
    "name": "%20padded",  # not a dataset name (outer spaces)
}


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def schema_of(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def ref(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


# --- the schema itself ------------------------------------------------------------------


def test_schema_is_openapi_31_and_lists_every_endpoint(reviewer):
    spec = schema_of(login(reviewer))
    assert spec["openapi"] == "3.1.0"
    assert {(method, path) for method, path, _ in operations(spec)} == DESIGN_ENDPOINTS
    assert set(spec["components"]["securitySchemes"]) == {"BearerToken", "SessionCookie"}
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))


def test_every_api_url_is_in_the_schema(reviewer):
    """A new endpoint cannot skip the schema: each URL under /api/ is documented."""
    documented = {re.sub(r"\{\w+\}", "<>", path.removeprefix("/api/")) for path in schema_of(login(reviewer))["paths"]}
    routes = {re.sub(r"<[\w:]+>", "<>", str(p.pattern)) for p in api_urls.urlpatterns if p.name not in NOT_ENDPOINTS}
    assert routes == documented


def test_every_operation_documents_its_refusals(reviewer):
    spec = schema_of(login(reviewer))
    for method, path, operation in operations(spec):
        codes = set(operation["responses"])
        assert {"400", "401"} <= codes, (method, path)  # 400: a query string holding NUL, on any endpoint
        assert {name for scheme in operation["security"] for name in scheme} == {"BearerToken", "SessionCookie"}
        if method != "get":
            assert {"400", "403", "413"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        for code in (code for code in codes if code >= "400"):  # every refusal in DESIGN's error shape
            error = ref(spec, operation["responses"][code]["content"]["application/json"]["schema"])
            assert set(error["required"]) == {"error"}, (method, path, code)
            assert ref(spec, error["properties"]["error"])["required"] == ["code", "message"], (method, path, code)


def test_request_bodies_refuse_unknown_fields_and_carry_an_example(reviewer):
    spec = schema_of(login(reviewer))
    for method, path, operation in operations(spec):
        if "requestBody" in operation:
            body = ref(spec, operation["requestBody"]["content"]["application/json"]["schema"])
            assert body.get("additionalProperties") is ((method, path) in OPEN_BODIES), (
                method,
                path,
            )
            assert body["examples"], (method, path)


def test_schema_and_docs_need_a_login(reviewer):
    anonymous = Client()
    response = anonymous.get("/api/openapi.json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    docs = anonymous.get("/api/docs")
    assert docs.status_code == 302 and docs["Location"].startswith("/accounts/login/")
    _, raw = ApiToken.issue(reviewer, "docs")
    assert anonymous.get("/api/openapi.json", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_the_upload_is_documented_but_served_by_the_plain_view(reviewer):
    match = resolve("/api/datasets/qa/imports")
    assert match.func.__name__ == "import_view" and match.url_name == "api-dataset-imports"
    operation = schema_of(login(reviewer))["paths"]["/api/datasets/{name}/imports"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert set(operation["responses"]) >= {"200", "201", "400", "403", "409", "413"}


def test_the_poll_is_documented_but_served_by_the_plain_view(reviewer, task):
    match = resolve(f"/api/tasks/{task.id}/jobs")
    assert match.func.__module__ == plain.__name__ and match.url_name == "api-task-jobs"
    spec = schema_of(login(reviewer))
    assert set(spec["paths"]["/api/tasks/{task_id}/jobs"]["get"]["responses"]) >= {"200", "304", "404"}


# --- /api/docs -------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_page_loads_only_local_assets(reviewer):
    client = login(reviewer)
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    parser = _Links()
    parser.feed(html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in parser.urls)
    for url in parser.urls:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), url
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


# --- the schema against a live server ----------------------------------------------------


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the live server is local


def call(base, method, path, *, token=None, body=None, headers=None):
    """(status, headers, parsed JSON or None) of one request to the live server."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method.upper(), headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            status, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, error.headers, error.read()
    is_json = (answer_headers.get("Content-Type") or "").startswith("application/json")
    return status, answer_headers, json.loads(raw) if raw and is_json else (raw.decode() if raw else None)


def assert_conforms(spec, value, schema, where="$"):
    """A small JSON Schema check: types, required and documented properties, enums, anyOf."""
    schema = ref(spec, schema)
    if "anyOf" in schema:
        assert any(_conforms(spec, value, option) for option in schema["anyOf"]), where
        return
    if "enum" in schema:
        assert value in schema["enum"], where
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), where
        properties = schema.get("properties", {})
        assert set(schema.get("required", [])) <= set(value), where
        if schema.get("additionalProperties") is not True:  # an open object (params, answers) takes any key
            assert set(value) <= set(properties), where
        for name, item in value.items():
            if name in properties:
                assert_conforms(spec, item, properties[name], f"{where}.{name}")
    elif kind == "array":
        assert isinstance(value, list), where
        for n, item in enumerate(value):
            assert_conforms(spec, item, schema.get("items", {}), f"{where}[{n}]")
    elif kind in PYTHON_TYPES:
        assert isinstance(value, PYTHON_TYPES[kind]) and not (kind != "boolean" and isinstance(value, bool)), where


PYTHON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "null": type(None)}


def _conforms(spec, value, schema):
    try:
        assert_conforms(spec, value, schema)
    except AssertionError:
        return False
    return True


class Caller:
    """Fills an operation's path and required query from real rows, its body from the schema's example."""

    def __init__(self, spec, base, values, token):
        self.spec, self.base, self.values, self.token = spec, base, values, token

    def url(self, path, operation, values=None):
        values = {**self.values, **(values or {})}
        url = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        query = [p for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")]
        return url + ("?" + "&".join(f"{p['name']}={values[p['name']]}" for p in query) if query else "")

    def body(self, operation, values=None):
        if "requestBody" not in operation:
            return None
        if values and "body" in values:
            return values["body"]
        return ref(self.spec, operation["requestBody"]["content"]["application/json"]["schema"])["examples"][0]

    def __call__(self, method, path, operation, *, token=None, values=None, headers=None):
        url = self.url(path, operation, values)
        status, answer_headers, body = call(
            self.base, method, url, token=token, body=self.body(operation, values), headers=headers
        )
        assert str(status) in operation["responses"], (method, url, status, body)
        return status, answer_headers, body


def assert_documented_body(spec, operation, status, headers, body):
    documented = operation["responses"][str(status)]
    if "content" not in documented:
        assert body is None
        return
    media_type = headers["Content-Type"].split(";")[0]
    if media_type != "application/json":  # a download (exports): text of a documented type
        assert media_type in documented["content"] and isinstance(body, str)
        return
    assert headers["Content-Type"] == "application/json"
    assert_conforms(spec, body, documented["content"]["application/json"]["schema"])


@pytest.fixture
def live(api_world):
    """The live server (tests/live_api.py) as a ``Caller`` with the staff token, and
    the values each state-changing operation needs to succeed."""
    world = api_world
    status, _, spec = call(world.base, "get", "/api/openapi.json", token=world.token)
    assert status == 200
    values = {
        "task_id": world.task.id,
        "job_id": world.failed.pk,
        "ids": f"{world.failed.pk},{world.queued.pk}",
        "judgement_id": world.judged.pk,
        "token": world.to_skip.token,
        "run_id": world.running.pk,
        "template_id": world.template.pk,
        "a": world.running.pk,  # compare_runs: a run with itself
        "b": world.running.pk,
        "what": "pairs",
        "extension": "csv",
        "name": world.task.source,
    }
    values_for = {
        "cancel_run": {"run_id": world.running.pk},
        "launch_run": {"run_id": world.scheduled.pk},
        "mark_baseline": {"run_id": world.finished.pk},
        "cancel_job": {"job_id": world.queued.pk},
        "hide_job": {"job_id": world.done.pk},
        "unhide_job": {"job_id": world.done.pk},
        "create_judgement": {"body": {"kind": "score", "jobs": [str(world.brief.pk)], "answers": {"quality": 5}}},
        "withdraw_judgement": {"judgement_id": world.judged.pk},
        "pair_verdict": {"token": world.to_judge.token},
        "skip_pair": {"token": world.to_skip.token},
        "preview_template": {"body": {"task": world.task.id}},
        "preview_draft": {"body": {"task": world.task.id, "messages": [{"role": "user", "content": "{{ title }}"}]}},
    }
    return Caller(spec, world.base, values, world.token), values_for


@pytest.mark.django_db(transaction=True)
def test_live_server_answers_every_operation_as_documented(live):
    caller, values_for = live
    spec = caller.spec
    for method, path, operation in operations(spec):
        values = values_for.get(operation["operationId"])
        status, headers, body = caller(method, path, operation, token=caller.token, values=values)
        assert 200 <= status < 300, (method, path, status, body)
        assert_documented_body(spec, operation, status, headers, body)


@pytest.mark.django_db(transaction=True)
def test_live_server_refusals_are_documented(live):
    caller, _ = live
    for method, path, operation in operations(caller.spec):
        status, headers, body = caller(method, path, operation)  # no token
        assert status == 401 and body["error"]["code"] == "unauthenticated"
        assert_documented_body(caller.spec, operation, status, headers, body)
        if "{" in path:
            status, headers, body = caller(method, path, operation, token=caller.token, values=MALFORMED)
            assert status == 404 and body["error"]["code"] == "not_found", (method, path)
            assert_documented_body(caller.spec, operation, status, headers, body)


@pytest.mark.django_db(transaction=True)
def test_live_server_etags_give_documented_304s(live):
    caller, _ = live
    for method, path, operation in operations(caller.spec):
        if "304" not in operation["responses"]:
            continue
        status, headers, _ = caller(method, path, operation, token=caller.token)
        assert status == 200 and headers["ETag"]
        status, _, body = caller(
            method, path, operation, token=caller.token, headers={"If-None-Match": headers["ETag"]}
        )
        assert status == 304 and body is None
