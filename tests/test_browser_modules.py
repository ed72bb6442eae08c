"""The pages as deployed (issue 24): DEBUG off, static files collected into
a temporary DJANGO_STATIC_ROOT by the manifest storage, gunicorn as
deploy/gunicorn.conf.py runs it. Every page loads its ES modules under their
hashed names (the manifest rewrites the `import` statements too) with no
console error and no failed request; and every time a page shows reads one
way, in the reader's time zone (issue 23)."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.browser_support import browser  # noqa: F401 (the fixture)
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pw-modules-123"
ZONE = "Asia/Kolkata"  # +05:30: a server-rendered UTC time shown unconverted would differ
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
HASHED = re.compile(r"^/static/(eval/[a-z]+)\.[0-9a-f]{12}(\.js)$")

SETUP = f"""
from django.contrib.auth import get_user_model
from eval.models import ApiToken, Run, Task
user = get_user_model().objects.create_superuser("boss", password="{PASSWORD}")
ApiToken.issue(user, "ci")
runs = list(Run.objects.filter(kind="generate").order_by("id").values_list("id", flat=True))
task = Task.objects.filter(jobs__isnull=False).order_by("id").first()
print("IDS", runs[0], runs[1], task.id)
"""


def _manage(env, *args, **kwargs):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deployed")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "modules-test-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(tmp / "static"),
        "DJANGO_LOCAL_DIR": str(tmp / "local"),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESS_LOG": "/dev/null",
    }
    _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    _manage(env, "migrate", "--verbosity", "0")
    _manage(env, "load_demo", "--with-results", "--verbosity", "0", capture_output=True)
    out = _manage(env, "shell", "-c", SETUP, capture_output=True, text=True).stdout
    run_a, run_b, task = re.search(r"IDS (\d+) (\d+) (\d+)", out).groups()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
    manifest = json.loads((tmp / "static" / "staticfiles.json").read_text())["paths"]
    yield {"url": f"http://127.0.0.1:{port}", "manifest": manifest, "runs": (run_a, run_b), "task": task}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def watched(browser, deployed):  # noqa: F811 (browser: the shared fixture)
    """A logged-in page in the ZONE time zone that records console errors,
    page errors, failed requests and every script it fetched."""
    context = browser.new_context(base_url=deployed["url"], timezone_id=ZONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.problems = []
    page.scripts = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text} ({page.url})"))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error} ({page.url})"))
    page.on("requestfailed", lambda r: _failed(page, r))
    page.on("response", lambda r: r.status >= 400 and page.problems.append(f"{r.status}: {r.url}"))
    page.on("request", lambda r: r.resource_type == "script" and page.scripts.append(r.url))
    page.goto("/accounts/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(deployed["url"] + "/")
    yield page
    context.close()


def _failed(page, request):
    # A load that the test's next navigation cancels (ERR_ABORTED) is not a broken request.
    if request.failure != "net::ERR_ABORTED":
        page.problems.append(f"failed: {request.url} {request.failure} ({page.url})")


def _pages(deployed):
    run_a, run_b = deployed["runs"]
    return {
        "tasks": "/",
        "review": f"/tasks/{deployed['task']}/",
        "pairs": "/pairs/",
        "runs": "/runs/",
        "a run": f"/runs/{run_b}/",
        "compare": f"/runs/compare?a={run_a}&b={run_b}",
        "results": "/results/",
        "judgements": "/judgements/",
        "dashboard": "/dashboard/",
        "datasets": "/datasets/",
        "templates": "/templates/",
        "tokens": "/tokens/",
    }


def test_every_page_loads_its_hashed_modules_without_an_error(watched, deployed):
    hashed = {"/static/" + name for name in deployed["manifest"].values()}
    for name, path in _pages(deployed).items():
        watched.scripts.clear()
        watched.goto(path)
        watched.wait_for_load_state("networkidle")
        assert watched.title() and "Server Error" not in watched.title(), name
        fetched = [url.removeprefix(deployed["url"]) for url in watched.scripts]
        product = [url for url in fetched if url.startswith("/static/eval/") and "/vendor/" not in url]
        assert product, f"{name}: no module fetched"
        for url in product:
            assert HASHED.match(url) and url in hashed, f"{name}: {url} is not a name from the manifest"
        # site.js comes through an import statement on every page: the rewritten imports were followed.
        assert "/static/" + deployed["manifest"]["eval/site.js"] in fetched, name
    assert watched.problems == []


def test_the_review_page_fetches_each_of_its_modules_by_its_hashed_name(watched, deployed):
    watched.goto(_pages(deployed)["review"])
    watched.wait_for_selector(".job-card")
    fetched = {url.removeprefix(deployed["url"]) for url in watched.scripts}
    for module in ("review", "cards", "format", "dom", "api", "poller", "markdown", "scores", "launch"):
        assert "/static/" + deployed["manifest"][f"eval/{module}.js"] in fetched, module
    assert not any(url.endswith("/static/eval/cards.js") for url in fetched)
    assert watched.problems == []


def _local(iso):
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M")


def test_every_time_reads_one_way_in_the_readers_zone(watched, deployed):
    pages = _pages(deployed)
    watched.goto(pages["review"])
    # A job card's start (drawn by cards.js from the job's JSON).
    started = watched.locator(".job-card .job-started").first
    watched.wait_for_function("() => (document.querySelector('.job-card .job-started') || {}).textContent")
    assert TIME.match(started.inner_text()) and started.inner_text() == _local(started.get_attribute("datetime"))
    # The "Saved" status, as the page words it after a save...
    watched.check("input[name=rating][value='4']")
    watched.click("#review-save")
    saved = watched.locator("#review-status time")
    saved.wait_for()
    assert TIME.match(saved.inner_text()), saved.inner_text()
    after_save = saved.inner_text()
    # ...and as the server renders it (UTC in the HTML), rewritten on load.
    watched.reload()
    saved.wait_for()
    assert saved.inner_text() == after_save == _local(saved.get_attribute("datetime"))
    # Server-rendered times elsewhere: a run's creation, the tokens list.
    for path, selector in ((pages["a run"], ".run-what time"), (pages["tokens"], "td time")):
        watched.goto(path)
        element = watched.locator(selector).first
        text = element.inner_text()
        assert TIME.match(text) and "UTC" not in text, (path, text)
        assert text == _local(element.get_attribute("datetime")), path
    assert watched.problems == []
