"""Browser test support, shared by every tests/test_browser*.py (registered in
conftest.py through ``pytest_plugins``): headless Debian chromium driven by
Playwright against a restartable in-process server on the test database, a
reviewer, a logged-in page, and helpers to make tasks and jobs.

Skipped when chromium is missing, unless REQUIRE_BROWSER=1 (then a failure).
"""

import os
import shutil
import threading
import time
from wsgiref.simple_server import WSGIServer

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import WSGIRequestHandler
from django.db import connections
from playwright.sync_api import sync_playwright

from eval.jobs import claims, create
from eval.models import Task
from tests.helpers import free_port

CHROMIUM = shutil.which("chromium")
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}
PASSWORD = "pw-browser-123"
POLL_MS = 300


# --- a server we can stop and start on the same port --------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Server(WSGIServer):
    """Threaded without socketserver.ThreadingMixIn, so Django's dev handler
    closes every connection after its answer: stopping the server really
    stops it (no kept-alive socket keeps serving)."""

    allow_reuse_address = True
    request_queue_size = 64

    def process_request(self, request, client_address):
        threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True).start()

    def _serve_one(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            connections.close_all()


class LiveServer:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = StaticFilesHandler(WSGIHandler())
        self.httpd = None
        self.thread = None

    def start(self):
        self.httpd = _Server(("127.0.0.1", self.port), _QuietHandler)
        self.httpd.set_app(self.app)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        message = "chromium is not installed (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail("REQUIRE_BROWSER=1 but " + message)
        pytest.skip(message)

    # Playwright's sync API keeps an event loop running in this thread, which
    # trips Django's async-safety check on every ORM call the test makes.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def web_settings(plain_http):
    settings = plain_http
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.POLL_INTERVAL_MS = POLL_MS
    settings.ECHO_CHUNK_DELAY_MS = 60
    settings.WORKER_FLUSH_INTERVAL_MS = 150
    settings.WORKER_POLL_INTERVAL_MS = 50
    settings.JOB_TRANSPORT = "db"
    settings.WORKER_SHUTDOWN_GRACE_SECONDS = 0.5
    return settings


@pytest.fixture
def server(transactional_db, web_settings):
    live = LiveServer()
    live.start()
    yield live
    live.stop()


def start_worker(worker_thread):
    return worker_thread(transport="db", concurrency=4)


@pytest.fixture
def worker(server, worker_thread):
    return start_worker(worker_thread)  # stopped by worker_thread, before the server stops


@pytest.fixture
def user(transactional_db, django_user_model, web_settings):
    # A transactional flush may have removed the migration's group: rebuild it.
    group, _ = Group.objects.get_or_create(name="reviewers")
    group.permissions.add(Permission.objects.get(codename="review_task", content_type__app_label="eval"))
    person = django_user_model.objects.create_user("rita", password=PASSWORD)
    person.groups.add(group)
    return person


def _on_dialog(page, dialog):
    """Record every browser dialog. A "leave this page?" (beforeunload) one is
    accepted, so a test's own navigation goes ahead; any other is dismissed."""
    page.dialogs.append(dialog.message)
    page.dialog_types.append(dialog.type)
    if dialog.type == "beforeunload":
        dialog.accept()
    else:
        dialog.dismiss()


@pytest.fixture
def page(browser, server, user):
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)  # waits for "eventually"; generous for a busy CI box
    page.dialogs = []
    page.dialog_types = []
    page.errors = []
    page.on("dialog", lambda dialog: _on_dialog(page, dialog))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto("/accounts/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    yield page
    context.close()


# --- data ---------------------------------------------------------------------------------------


def make_task(words=30, **fields):
    n = Task.objects.count()
    fields.setdefault("source", "browser")
    fields.setdefault("external_id", f"b-{n}-{time.monotonic_ns()}")
    fields.setdefault("title", f"Browser task {n}")
    fields.setdefault("prompt", " ".join(f"word{i}" for i in range(words)))
    return Task.objects.create(**fields)


def fake_running_job(task, user, worker_id="fake-worker", model="echo", params=None):
    """A job held by a worker that is not running here: it stays running."""
    job, _ = create.create_job(task=task, provider="echo", model=model, params=params, created_by=user)
    claimed = claims.claim(job.pk, worker_id).job
    return job, claimed
