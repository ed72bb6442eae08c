"""Pages: login redirects, who sees what, the review page frame, CSP and
escaping, the dashboard, and `check --deploy` under production settings."""

import os
import re
import secrets
from pathlib import Path

import pytest
from django.test import Client

from eval.jobs import create
from eval.models import Review
from tests.helpers import check_deploy, login

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _plain_http(settings):
    settings.SECURE_SSL_REDIRECT = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.mark.parametrize("url", ["/", "/tasks/", "/tasks/1/", "/dashboard/", "/tokens/"])
def test_pages_redirect_anonymous_users_to_login(db, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_and_logout(reviewer):
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_task_list_page(reviewer, make_task):
    tasks = [make_task(title=f"Title {n}") for n in range(55)]
    Review.objects.create(task=tasks[0], reviewer=reviewer, rating=3)
    client = login(reviewer)
    page = client.get("/")
    html = page.content.decode()
    assert "Title 0" in html and "Title 49" in html and "Title 50" not in html
    assert f'after={tasks[49].id}"' in html
    assert page.context["reviewed"] == 1 and page.context["total"] == 55
    second = client.get(f"/?after={tasks[49].id}").content.decode()
    assert "Title 50" in second and "Title 54" in second and "Title 49" not in second
    assert f"before={tasks[50].id}" in second
    back = client.get(f"/?before={tasks[50].id}").content.decode()
    assert "Title 0" in back and "Title 49" in back
    assert "Title 3" in client.get("/?q=Title+3").content.decode()


def test_task_list_page_for_a_non_reviewer(outsider, make_task):
    make_task(title="Secret task")
    html = login(outsider).get("/").content.decode()
    assert "Secret task" not in html and "reviewers" in html


def test_review_page_renders_the_frame(reviewer, make_task):
    before, task, after = make_task(), make_task(prompt="Say hi", reference="hi"), make_task()
    html = login(reviewer).get(f"/tasks/{task.id}/").content.decode()
    assert 'id="review"' in html and f'data-poll-url="/api/tasks/{task.id}/jobs"' in html
    assert f'data-next-url="/tasks/{after.id}/"' in html and f'data-prev-url="/tasks/{before.id}/"' in html
    assert 'class="run-button" data-provider="echo" data-model="echo"' in html
    assert 'id="job-card-template"' in html and 'id="review-form"' in html
    assert "Say hi" in html and 'id="task-reference"' in html


def test_review_page_shows_task_text_as_text(reviewer, make_task):
    task = make_task(title=f"T {XSS}", prompt=f"Prompt {XSS}", reference=f"Ref {XSS}")
    html = login(reviewer).get(f"/tasks/{task.id}/").content.decode()
    assert XSS not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 3


def test_review_page_is_404_for_outsiders_and_unknown_tasks(outsider, reviewer, task):
    assert login(outsider).get(f"/tasks/{task.id}/").status_code == 404
    assert login(reviewer).get("/tasks/999999/").status_code == 404


def test_pages_have_no_inline_script_or_style_and_a_strict_csp(reviewer, staff, task):
    create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    for client, url in [
        (login(reviewer), "/"),
        (login(reviewer), f"/tasks/{task.id}/"),
        (login(reviewer), "/tokens/"),
        (login(staff), "/dashboard/"),
        (Client(), "/accounts/login/"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=", html), url
        assert not re.search(r"\sstyle=", html), url


def test_api_answers_carry_the_csp_too(reviewer):
    assert "default-src 'self'" in login(reviewer).get("/api/models")["Content-Security-Policy"]


def test_static_scripts_never_use_html_sinks():
    scripts = list((ROOT / "eval" / "static" / "eval").glob("*.js"))
    assert len(scripts) >= 4
    for path in scripts:
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"


def test_dashboard_is_staff_only(reviewer, staff):
    assert login(reviewer).get("/dashboard/").status_code == 403
    page = login(staff).get("/dashboard/")
    assert page.status_code == 200 and b'data-status-url="/api/status"' in page.content


def test_admin_pages_work_for_staff(django_user_model, task, reviewer):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=reviewer)
    client = login(root)
    for url in [
        "/admin/",
        "/admin/eval/task/",
        "/admin/eval/llmjob/",
        f"/admin/eval/llmjob/{job.pk}/change/",
        "/admin/eval/review/",
        "/admin/eval/workerheartbeat/",
        "/admin/eval/apitoken/",
        "/admin/eval/apitoken/add/",
    ]:
        assert client.get(url).status_code == 200, url


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "eval.example.com",
        "DJANGO_LOCAL_DIR": str(tmp_path),
    }
    result = check_deploy(env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
