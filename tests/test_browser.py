"""The review console in a real browser: headless Debian chromium driven by
Playwright, against a restartable in-process server on the test database
and a real worker (db transport) in a background thread.

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

from eval.jobs import batch, claims, create, transitions
from eval.models import JobStatus, LLMJob, Review, Task
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium")
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}
XSS = "<img src=x onerror=alert(1)>"
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
    from playwright.sync_api import sync_playwright

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
def web_settings(settings):
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
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


@pytest.fixture
def page(browser, server, user):
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)  # waits for "eventually"; generous for a busy CI box
    page.dialogs = []
    page.errors = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto("/accounts/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    yield page
    context.close()


def make_task(words=30, **fields):
    n = Task.objects.count()
    fields.setdefault("source", "browser")
    fields.setdefault("external_id", f"b-{n}-{time.monotonic_ns()}")
    fields.setdefault("title", f"Browser task {n}")
    fields.setdefault("prompt", " ".join(f"word{i}" for i in range(words)))
    return Task.objects.create(**fields)


def fake_running_job(task, user, worker_id="fake-worker"):
    """A job held by a worker that is not running here: it stays running."""
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=user)
    claimed = claims.claim(job.pk, worker_id).job
    return job, claimed


def card_state(page, job_id):
    return page.evaluate(
        """(id) => {
            const el = document.getElementById('job-' + id);
            if (!el) return null;
            return {
              status: el.dataset.status,
              progress: Number(el.querySelector('.job-progress').value),
              output: el.querySelector('.job-output').textContent,
              message: el.querySelector('.job-message').textContent,
            };
        }""",
        str(job_id),
    )


# --- tests -----------------------------------------------------------------------------------


def test_launch_echo_job_and_watch_it_to_the_end(page, server, worker_thread):
    """queued -> running -> succeeded. The worker starts once the queued card is
    shown: on PostgreSQL it would otherwise claim the job (LISTEN/NOTIFY, ~2 ms)
    before the create answer is even written, and the card starts as running."""
    task = make_task(words=40)
    page.goto(f"/tasks/{task.id}/")
    # Record every status a card shows, and prove the page never reloads.
    page.evaluate(
        """() => {
            window.__noReload = true;
            window.__seen = [];
            new MutationObserver(() => {
              for (const el of document.querySelectorAll('.job-card')) {
                const s = el.dataset.status;
                if (s && window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s);
              }
            }).observe(document.getElementById('jobs'), {subtree: true, childList: true, attributes: true});
        }"""
    )
    page.click(".run-button[data-model=echo]")
    page.wait_for_selector(".job-card[data-status=queued]")
    job = LLMJob.objects.get(task=task)
    start_worker(worker_thread)
    watch_to_the_end(page, task, job)


def watch_to_the_end(page, task, job):
    page.wait_for_function(
        """(id) => {
            const el = document.getElementById('job-' + id);
            return el && el.dataset.status === 'running'
              && Number(el.querySelector('.job-progress').value) > 0
              && el.querySelector('.job-output').textContent.length > 0;
        }""",
        arg=str(job.pk),
    )
    running = card_state(page, job.pk)
    assert running["output"] and len(running["output"]) < len(task.prompt)  # partial output
    assert "Generating" in running["message"]
    page.wait_for_function(
        "(id) => document.getElementById('job-' + id).dataset.status === 'succeeded'", arg=str(job.pk), timeout=20_000
    )
    done = card_state(page, job.pk)
    assert done["output"] == task.prompt and done["progress"] == 100
    seen = page.evaluate("window.__seen")
    assert seen[0] == "queued" and "running" in seen and seen[-1] == "succeeded"
    assert page.evaluate("window.__noReload") is True
    card = page.locator(f"#job-{job.pk}")
    assert "40 out" in card.locator(".job-tokens").inner_text()
    assert card.locator(".job-stop").inner_text() == "end_turn"
    assert card.locator(".job-cancel").is_hidden() and card.locator(".job-retry").is_hidden()
    assert page.errors == []


def test_cancel_a_running_job(page, worker, web_settings):
    web_settings.ECHO_CHUNK_DELAY_MS = 40
    task = make_task(words=400)
    page.goto(f"/tasks/{task.id}/")
    page.click(".run-button[data-model=echo]")
    page.wait_for_selector(".job-card[data-status=running]", timeout=15_000)
    job = LLMJob.objects.get(task=task)
    page.click(f"#job-{job.pk} .job-cancel")
    page.wait_for_selector(f"#job-{job.pk}[data-status=cancelled]", timeout=20_000)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert len(job.output) < len(task.prompt)
    card = page.locator(f"#job-{job.pk}")
    assert "rita" in card.locator(".job-message").inner_text()
    assert card.locator(".job-retry").is_visible()
    # Retry from the card makes a new queued job (the worker runs it).
    card.locator(".job-retry").click()
    page.wait_for_function("() => document.querySelectorAll('.job-card').length === 2")
    assert LLMJob.objects.filter(task=task, retry_of=job).count() == 1


def test_review_with_the_keyboard(page, user):
    task, following = make_task(), make_task()
    page.goto(f"/tasks/{task.id}/")
    page.click("#review-notes")
    page.keyboard.type("solid answer")  # 's' and 'n' typed here must not trigger shortcuts
    page.keyboard.press("Escape")
    page.keyboard.press("4")
    page.keyboard.press("s")
    page.wait_for_selector("#review-status[data-saved]")
    review = Review.objects.get(task=task, reviewer=user)
    assert review.rating == 4 and review.notes == "solid answer"
    page.keyboard.press("r")
    page.wait_for_selector(".job-card")
    assert LLMJob.objects.filter(task=task, created_by=user).count() == 1
    page.keyboard.press("n")
    page.wait_for_url(f"**/tasks/{following.id}/")
    page.keyboard.press("p")
    page.wait_for_url(f"**/tasks/{task.id}/")
    assert page.locator("input[name=rating][value='4']").is_checked()


def test_survives_the_server_being_down(page, server, user):
    task = make_task()
    job, claimed = fake_running_job(task, user)
    page.goto(f"/tasks/{task.id}/")
    page.wait_for_selector(f"#job-{job.pk}[data-status=running]")
    notice = page.locator("#poll-notice")
    assert notice.is_hidden()
    server.stop()
    down_at = time.monotonic()
    notice.wait_for(state="visible", timeout=10_000)
    assert "retrying" in notice.inner_text()
    # While the server is down the worker keeps writing progress.
    batch.record_progress(
        "fake-worker", [batch.ProgressUpdate(job.pk, claimed.attempt, 50, "Generating", "partial text", 2)]
    )
    time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
    server.start()
    notice.wait_for(state="hidden", timeout=35_000)
    page.wait_for_function(
        "(id) => document.querySelector('#job-' + id + ' .job-output').textContent === 'partial text'",
        arg=str(job.pk),
    )
    assert card_state(page, job.pk)["progress"] == 50


def test_polling_updates_cards_in_place_and_pauses_when_hidden(page, user):
    task = make_task()
    first, first_claim = fake_running_job(task, user, "fake-1")
    second, _ = fake_running_job(task, user, "fake-2")
    page.goto(f"/tasks/{task.id}/")
    page.wait_for_selector(f"#job-{second.pk}")
    page.evaluate("(id) => { document.getElementById('job-' + id).__mark = 'kept'; }", str(second.pk))
    page.click("#review-notes")
    page.keyboard.type("draft")
    batch.record_progress(
        "fake-1", [batch.ProgressUpdate(first.pk, first_claim.attempt, 30, "Generating", "new words", 3)]
    )
    page.wait_for_function(
        "(id) => document.querySelector('#job-' + id + ' .job-output').textContent === 'new words'",
        arg=str(first.pk),
    )
    assert page.evaluate("(id) => document.getElementById('job-' + id).__mark", str(second.pk)) == "kept"
    assert page.evaluate("document.activeElement.id") == "review-notes"
    assert page.input_value("#review-notes") == "draft"

    # Hidden tab: no polls at all; shown again: polls at once.
    count = lambda: page.evaluate("window.Eval.reviewPoller.pollCount")  # noqa: E731
    page.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    before = count()
    time.sleep(4 * POLL_MS / 1000)
    assert count() == before
    page.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.wait_for_function(f"window.Eval.reviewPoller.pollCount > {before}")

    # All terminal: fast polling stops (the idle poll is 30 s apart).
    for job in (first, second):
        transitions.request_cancel(job.pk, by="rita")
    LLMJob.objects.filter(task=task).update(status=JobStatus.CANCELLED, version=99)
    page.wait_for_selector(f"#job-{first.pk}[data-status=cancelled]")
    time.sleep(POLL_MS / 1000)
    settled = count()
    time.sleep(5 * POLL_MS / 1000)
    assert count() == settled


def test_task_text_and_model_output_are_shown_as_text(page, user):
    task = make_task(title=f"Title {XSS}", prompt=f"Prompt {XSS} end", reference=f"Reference {XSS}")
    job, claimed = fake_running_job(task, user)
    transitions.succeed_one(
        job.pk, "fake-worker", claimed.attempt, output=f"Output {XSS} <script>alert(2)</script>", stop_reason="end_turn"
    )
    other, other_claim = fake_running_job(task, user, "fake-2")
    transitions.succeed_one(other.pk, "fake-2", other_claim.attempt, output=f"Other {XSS}", stop_reason="end_turn")
    page.goto(f"/tasks/{task.id}/")
    page.wait_for_selector(f"#job-{job.pk}[data-status=succeeded]")
    assert page.locator("#task-prompt").inner_text() == f"Prompt {XSS} end"
    assert page.locator("#task-title").inner_text() == f"Title {XSS}"
    output = page.locator(f"#job-{job.pk} .job-output").inner_text()
    assert output == f"Output {XSS} <script>alert(2)</script>"
    page.select_option("#diff-a", str(job.pk))
    page.select_option("#diff-b", str(other.pk))
    page.click("#diff-button")
    assert "onerror" in page.locator("#diff-output").inner_text()
    assert page.locator("#diff-output ins, #diff-output del").count() >= 2
    time.sleep(0.3)
    assert page.locator("img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.dialogs == []
    assert page.errors == []
