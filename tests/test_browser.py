"""The review console in a real browser: headless Debian chromium driven by
Playwright, against a restartable in-process server on the test database
and a real worker (db transport) in a background thread. The fixtures
(browser, server, user, page, worker) live in tests/browser_support.py.

Skipped when chromium is missing, unless REQUIRE_BROWSER=1 (then a failure).
"""

import time

import pytest

from eval.jobs import batch, endings, transitions
from eval.models import JobStatus, LLMJob, Review
from tests.browser_support import POLL_MS, fake_running_job, make_task, start_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<img src=x onerror=alert(1)>"


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
    assert card.locator(".job-stop").inner_text() == "finished"
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
    count = lambda: page.evaluate("Number(document.getElementById('review').dataset.polls || 0)")  # noqa: E731
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
    page.wait_for_function(f"Number(document.getElementById('review').dataset.polls || 0) > {before}")

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
    endings.succeed_one(
        job.pk, "fake-worker", claimed.attempt, output=f"Output {XSS} <script>alert(2)</script>", stop_reason="end_turn"
    )
    other, other_claim = fake_running_job(task, user, "fake-2")
    endings.succeed_one(other.pk, "fake-2", other_claim.attempt, output=f"Other {XSS}", stop_reason="end_turn")
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
