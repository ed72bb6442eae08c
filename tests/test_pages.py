"""Pages: login redirects, who sees what, the task list's filters, the review
page frame, blind pairs, CSP and escaping, the dashboard, the error pages,
the favicon, and `check --deploy` under production settings."""

import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from eval.evaluation.reviews import judgements, seen
from eval.jobs import claims, create, endings
from eval.models import ModelSeen, Review
from tests.helpers import check_deploy, login

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.mark.parametrize("url", ["/", "/tasks/", "/tasks/1/", "/pairs/", "/dashboard/", "/tokens/"])
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
    assert re.search(r'class="run-button" data-provider="echo" [^>]*data-model="echo"', html)
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
        (login(reviewer), "/pairs/"),
        (login(staff), "/dashboard/"),
        (Client(), "/accounts/login/"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", html), url  # JSON is data
        assert not re.search(r"\son[a-z]+=", html), url
        assert not re.search(r"\sstyle=", html), url


def test_api_answers_carry_the_csp_too(reviewer):
    assert "default-src 'self'" in login(reviewer).get("/api/models")["Content-Security-Policy"]


def _code(text):
    """A script without its comments (a comment may say "never innerHTML")."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def test_static_scripts_never_use_html_sinks():
    scripts = list((ROOT / "eval" / "static" / "eval").glob("*.js"))
    assert len(scripts) >= 4
    for path in scripts:
        text = _code(path.read_text())
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"


def test_dashboard_is_staff_only(reviewer, staff):
    assert login(reviewer).get("/dashboard/").status_code == 403
    page = login(staff).get("/dashboard/")
    assert page.status_code == 200 and b'data-status-url="/api/status"' in page.content


def finished_job(task, model, output):
    job, _ = create.create_job(task=task, provider="echo", model=model)
    claimed = claims.claim(job.pk, "w1").job
    assert endings.succeed_one(job.pk, "w1", claimed.attempt, output=output, stop_reason="end_turn")
    return job


def score(reviewer, task, job):
    jobs = judgements.judgeable_jobs(task, [str(job.pk)])
    return judgements.record(reviewer=reviewer, task=task, kind="score", jobs=jobs, answers={"quality": 4})


@pytest.fixture
def fresh_seen_cache():
    seen.forget_cache()
    yield
    seen.forget_cache()


@pytest.fixture
def request_log(caplog):
    """Every record of django.request (which does not propagate to caplog) and eval.pages."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    caplog.set_level(logging.INFO, logger="eval.pages")
    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("django.request", "eval.pages")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


def test_task_list_review_filters(reviewer, make_task):
    first, second, _ = make_task(title="First"), make_task(title="Second"), make_task(title="Third")
    Review.objects.create(task=first, reviewer=reviewer, rating=4)
    score(reviewer, second, finished_job(second, "echo", "an answer"))
    client = login(reviewer)

    def titles(query):
        html = client.get("/tasks/?" + query).content.decode()
        return [title for title in ("First", "Second", "Third") if f">{title}</a>" in html]

    assert titles("") == ["First", "Second", "Third"]
    assert titles("review=needed") == ["Third"]
    assert titles("review=mine") == ["First", "Second"]
    assert titles("review=stale") == []
    assert titles("review=later") == ["First", "Second", "Third"]  # an unknown filter is ignored
    second.prompt = "changed at the source"
    second.save()
    assert titles("review=stale") == ["Second"]
    page = client.get("/tasks/?review=needed&status=open")
    html = page.content.decode()
    assert 'aria-current="page">To review</a>' in html
    assert 'name="review" value="needed"' in html  # the search keeps the tab
    assert page.context["total"] == 3 and page.context["reviewed"] == 2  # progress over the whole selection
    assert "re-review" in client.get("/tasks/").content.decode()


def test_task_list_pages_keep_the_review_filter(reviewer, make_task):
    tasks = [make_task(title=f"Title {n}") for n in range(52)]
    html = login(reviewer).get("/tasks/?review=needed&q=Title").content.decode()
    assert f'href="?q=Title&amp;review=needed&amp;after={tasks[49].id}"' in html


def test_pairs_page_is_for_reviewers_only(reviewer, outsider):
    page = login(reviewer).get("/pairs/")
    assert page.status_code == 200
    assert 'id="pairs"' in page.content.decode() and 'data-next-url="/api/pairs/next"' in page.content.decode()
    refused = login(outsider).get("/pairs/")
    assert refused.status_code == 403 and "reviewers group" in refused.content.decode()
    assert "Blind pairs" not in refused.content.decode().split("</nav>")[0]  # not in an outsider's menu
    assert 'href="/pairs/"' in login(reviewer).get("/").content.decode()


def test_pairs_page_names_no_task_job_or_model(reviewer, make_task, fresh_seen_cache):
    task = make_task(title="Hidden title", external_id="hidden-ext", prompt="alpha beta gamma")
    outputs = {"echo": "alpha beta gamma", "echo-brief": "alpha", "echo-reverse": "gamma beta alpha"}
    jobs = [finished_job(task, model, output) for model, output in outputs.items()]
    client = login(reviewer)
    assert client.get("/api/pairs/next").status_code == 200  # a pair is open for this reviewer
    html = client.get("/pairs/").content.decode()
    for job in jobs:
        assert str(job.pk) not in html and job.pk.hex not in html
    assert "echo" not in html.lower()  # no model or provider name
    assert "Hidden title" not in html and "hidden-ext" not in html and "alpha" not in html  # texts: from the API
    assert f"/tasks/{task.pk}/" not in html and "data-task" not in html and "data-job" not in html
    assert not ModelSeen.objects.filter(user=reviewer).exists()  # the page itself does not end the blindness


def test_a_refused_page_is_styled_and_logged_as_one_info_line(reviewer, request_log):
    response = login(reviewer).get("/dashboard/")
    html = response.content.decode()
    assert response.status_code == 403
    assert 'class="error-page"' in html and "The dashboard is for staff" in html
    assert 'header class="top"' in html and "/static/eval/app.css" in html
    assert [(r.name, r.levelno, r.exc_info) for r in request_log] == [("eval.pages", logging.INFO, None)]
    assert request_log[0].getMessage() == "Forbidden: /dashboard/ for alice"


def test_a_missing_page_is_styled(reviewer):
    response = login(reviewer).get("/no-such-page/")
    assert response.status_code == 404 and 'class="error-page"' in response.content.decode()


def test_favicon(reviewer):
    response = Client().get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/eval/favicon.svg"
    assert finders.find("eval/favicon.svg")
    html = login(reviewer).get("/").content.decode()
    assert '<link rel="icon" href="/static/eval/favicon.svg" type="image/svg+xml">' in html


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
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    }
    result = check_deploy(env, timeout=120)
    assert result.returncode != 0 and "eval.E040" in result.stderr, "static files not collected: every page a 500"
    collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"]
    subprocess.run(collect, cwd=ROOT, env=env, check=True, timeout=300)
    result = check_deploy(env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
