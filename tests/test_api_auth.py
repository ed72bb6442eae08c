"""The API's front door: 401 before CSRF, JSON CSRF failures, Bearer tokens,
405, 404 for unknown paths, 413 and bad JSON; the token page and admin."""

import json

import pytest
from django.test import Client

from eval.models import ApiToken, LLMJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


JOB_ID = "0b6f7f2e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


def error_of(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) <= {"code", "message", "field"}
    assert body["error"]["message"]
    return body["error"]["code"]


def endpoints(task_id):
    return [
        ("get", "/api/tasks"),
        ("get", f"/api/tasks/{task_id}/jobs"),
        ("post", f"/api/tasks/{task_id}/jobs"),
        ("get", f"/api/tasks/{task_id}/review"),
        ("put", f"/api/tasks/{task_id}/review"),
        ("get", "/api/jobs?ids=" + JOB_ID),
        ("get", f"/api/jobs/{JOB_ID}"),
        ("post", f"/api/jobs/{JOB_ID}/cancel"),
        ("post", f"/api/jobs/{JOB_ID}/retry"),
        ("get", "/api/models"),
        ("get", "/api/status"),
        ("get", "/api/nothing-here"),
    ]


def test_anonymous_calls_get_401_before_any_csrf_check(task):
    client = Client(enforce_csrf_checks=True)
    for method, url in endpoints(task.id):
        if method == "get":
            response = client.get(url)
        else:
            response = getattr(client, method)(url, "{}", content_type="application/json")
        assert response.status_code == 401, (method, url)
        assert error_of(response) == "unauthenticated"
        assert "Bearer" in response["WWW-Authenticate"]


def test_public_health_endpoints_need_no_login(db):
    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_session_post_without_csrf_token_is_json_403(reviewer, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    body = json.dumps({"provider": "echo", "model": "echo"})
    response = client.post(f"/api/tasks/{task.id}/jobs", body, content_type="application/json")
    assert response.status_code == 403
    assert error_of(response) == "csrf_failed"
    response = client.put(
        f"/api/tasks/{task.id}/review", "{}", content_type="application/json", HTTP_X_CSRFTOKEN="wrong" * 8
    )
    assert response.status_code == 403 and error_of(response) == "csrf_failed"
    assert not LLMJob.objects.exists()


def test_session_post_with_csrf_header_passes(reviewer, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    client.get("/")  # the page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/api/tasks/{task.id}/jobs",
        json.dumps({"provider": "echo", "model": "echo"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201, response.content


def test_csrf_over_https_checks_the_referer_too(reviewer, task, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    client.get("/", secure=True)
    token = client.cookies["csrftoken"].value
    url = f"/api/tasks/{task.id}/review"
    response = client.put(url, "{}", "application/json", secure=True, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 403 and error_of(response) == "csrf_failed"  # no Referer
    response = client.put(
        url, "{}", "application/json", secure=True, HTTP_X_CSRFTOKEN=token, HTTP_REFERER="https://testserver/"
    )
    assert response.status_code == 200


def test_bearer_token_authenticates_without_csrf(reviewer, task):
    _, raw = ApiToken.issue(reviewer, "script")
    client = Client(enforce_csrf_checks=True)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/tasks", **auth).json()["count"] == 1
    response = client.post(
        f"/api/tasks/{task.id}/jobs", json.dumps({"provider": "echo", "model": "echo"}), "application/json", **auth
    )
    assert response.status_code == 201
    assert response.json()["created_by"] == "alice"
    token = ApiToken.objects.get()
    assert token.last_used_at is not None


def test_bad_and_revoked_tokens_get_401(reviewer, task):
    token, raw = ApiToken.issue(reviewer, "script")
    client = Client()
    response = client.get("/api/tasks", HTTP_AUTHORIZATION="Bearer evt_not-a-real-token")
    assert response.status_code == 401 and error_of(response) == "unauthenticated"
    token.revoke()
    response = client.get("/api/tasks", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    # A bad token is refused even alongside a valid session.
    client.force_login(reviewer)
    assert client.get("/api/tasks", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert client.get("/api/tasks").status_code == 200


def test_token_of_inactive_user_is_refused(reviewer):
    _, raw = ApiToken.issue(reviewer, "script")
    reviewer.is_active = False
    reviewer.save()
    assert Client().get("/api/tasks", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_only_the_hash_is_stored(reviewer):
    token, raw = ApiToken.issue(reviewer, "script")
    assert raw.startswith("evt_") and len(raw) > 40
    assert raw not in (token.key_hash, token.prefix)
    assert raw.startswith(token.prefix)


def test_method_not_allowed_is_405_json(reviewer, task):
    client = Client()
    client.force_login(reviewer)
    for method, url in [
        ("delete", "/api/tasks"),
        ("put", f"/api/tasks/{task.id}/jobs"),
        ("post", f"/api/tasks/{task.id}/review"),
        ("get", f"/api/jobs/{JOB_ID}/cancel"),
        ("post", "/api/models"),
        ("post", "/api/status"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 405, (method, url)
        assert error_of(response) == "method_not_allowed"
        assert response["Allow"]


def test_allow_lists_exactly_the_url_methods_and_anonymous_gets_401_first(reviewer, task):
    client = Client()
    client.force_login(reviewer)
    for method, url, allow in [
        ("put", f"/api/tasks/{task.id}/jobs", "GET, POST"),
        ("delete", f"/api/tasks/{task.id}/review", "GET, PUT"),
        ("patch", "/api/jobs", "GET"),
        ("get", f"/api/jobs/{JOB_ID}/retry", "POST"),
        ("options", "/api/models", "GET"),
    ]:
        assert getattr(client, method)(url)["Allow"] == allow, (method, url)
        anonymous = getattr(Client(), method)(url)
        assert anonymous.status_code == 401 and error_of(anonymous) == "unauthenticated", (method, url)


def test_head_is_answered_like_get(reviewer, task):
    client = Client()
    client.force_login(reviewer)
    for url in ["/api/tasks", f"/api/tasks/{task.id}/jobs", "/api/models", f"/api/tasks/{task.id}/review"]:
        response = client.head(url)
        assert response.status_code == 200 and response.content == b"", url
    assert Client().head("/api/models").status_code == 401


def test_validation_errors_are_400_invalid_never_422(reviewer, task):
    client = Client()
    client.force_login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    for body, field in [
        ({"provider": 3, "model": "echo"}, "provider"),
        ({"provider": "echo", "model": "echo", "params": {"max_tokens": "5"}}, "params.max_tokens"),
        ({"provider": "echo", "model": "echo", "params": {"system": ["x"]}}, "params.system"),
        ({"provider": "echo", "model": "echo", "params": {"max_tokens": True}}, "params.max_tokens"),
    ]:
        response = client.post(url, json.dumps(body), content_type="application/json")
        assert response.status_code == 400, body
        assert error_of(response) == "invalid" and response.json()["error"]["field"] == field, body
    for empty in ["", "null"]:
        response = client.post(url, empty, content_type="application/json")
        assert response.status_code == 400 and error_of(response) == "invalid"
    response = client.post(url, "provider=echo&model=echo", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and error_of(response) == "invalid"
    assert not LLMJob.objects.exists()


def test_unknown_api_paths_and_trailing_slashes_are_json_404(reviewer, task):
    client = Client()
    client.force_login(reviewer)
    for url in ["/api/nope", "/api/tasks/", f"/api/tasks/{task.id}/jobs/", "/api/"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert error_of(response) == "not_found"
        assert Client().get(url).status_code == 401, url


def test_body_over_the_limit_is_413(reviewer, task, settings):
    settings.API_MAX_BODY_BYTES = 2048
    client = Client()
    client.force_login(reviewer)
    body = json.dumps({"provider": "echo", "model": "echo", "params": {"system": "x" * 4000}})
    response = client.post(f"/api/tasks/{task.id}/jobs", body, content_type="application/json")
    assert response.status_code == 413 and error_of(response) == "too_large"
    response = client.put(f"/api/tasks/{task.id}/review", json.dumps({"notes": "y" * 5000}), "application/json")
    assert response.status_code == 413
    assert not LLMJob.objects.exists()


def test_malformed_json_is_400(reviewer, task):
    client = Client()
    client.force_login(reviewer)
    for body in ["{not json", "[1, 2]", '"text"']:
        response = client.post(f"/api/tasks/{task.id}/jobs", body, content_type="application/json")
        assert response.status_code == 400, body
        assert error_of(response) == "invalid"


# --- the token page and the admin ----------------------------------------------------


def test_token_page_creates_shows_once_and_revokes(reviewer):
    client = Client()
    client.force_login(reviewer)
    # Post/redirect/get: the secret is shown once, on the page the redirect leads to.
    response = client.post("/tokens/", {"name": "nightly export"}, follow=True)
    assert response.redirect_chain == [("/tokens/", 302)]
    raw = response.context["created"]
    assert raw and raw.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    assert Client().get("/api/models", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    # Listed afterwards, but never shown again.
    again = client.get("/tokens/")
    assert b"nightly export" in again.content and raw.encode() not in again.content
    token = ApiToken.objects.get()
    assert client.post(f"/tokens/{token.id}/revoke").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Client().get("/api/models", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_token_page_needs_a_name_and_cannot_revoke_others(reviewer, outsider):
    client = Client()
    client.force_login(reviewer)
    response = client.post("/tokens/", {"name": "  "})
    assert response.context["error"] and not ApiToken.objects.exists()
    theirs, _ = ApiToken.issue(outsider, "theirs")
    assert client.post(f"/tokens/{theirs.id}/revoke").status_code == 404
    assert client.get(f"/tokens/{theirs.id}/revoke").status_code in (404, 405)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_token_page_needs_login(db):
    response = Client().get("/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_admin_creates_and_revokes_tokens(django_user_model, reviewer):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/eval/apitoken/add/", {"user": reviewer.pk, "name": "from admin", "_save": "1"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.user == reviewer and token.key_hash
    shown = [str(m) for m in response.context["messages"]]
    raw = next(word for text in shown for word in text.split() if word.startswith("evt_"))
    assert Client().get("/api/models", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert client.get("/admin/eval/apitoken/").status_code == 200
    assert client.get(f"/admin/eval/apitoken/{token.pk}/change/").status_code == 200
    client.post("/admin/eval/apitoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]}, follow=True)
    token.refresh_from_db()
    assert token.revoked_at is not None
