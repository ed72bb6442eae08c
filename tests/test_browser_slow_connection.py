"""A hung poll no longer stalls the review page (issue "Operations under
faults", item 10): every request has a deadline (eval/static/eval/api.js),
the poller says "Connection slow, retrying" in a calm style, keeps polling and
clears the notice when a poll gets through. The deadline is shortened through
window.EVAL_FETCH_TIMEOUT_MS so the test need not wait 10 s. Fixtures:
tests/browser_support.py."""

import re

import pytest

from eval.jobs import batch
from tests.browser_support import fake_running_job, make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEADLINE_MS = 500


def output_is(page, job, text):
    page.wait_for_function(
        "([id, text]) => document.querySelector('#job-' + id + ' .job-output').textContent === text",
        arg=[str(job.pk), text],
    )


def test_a_hung_poll_shows_a_slow_connection_and_the_page_recovers(page, user):
    task = make_task()
    job, claimed = fake_running_job(task, user)
    page.add_init_script(f"window.EVAL_FETCH_TIMEOUT_MS = {DEADLINE_MS}")
    page.goto(f"/tasks/{task.id}/")
    page.wait_for_selector(f"#job-{job.pk}[data-status=running]")
    notice = page.locator("#poll-notice")
    assert notice.is_hidden()

    held = []  # requests accepted and never answered: a hung connection
    polls = re.compile(rf"/api/tasks/{task.id}/jobs")

    def hold(route):
        held.append(route)

    page.route(polls, hold)
    before = page.evaluate("Number(document.getElementById('review').dataset.polls || 0)")
    notice.wait_for(state="visible")
    assert notice.get_attribute("data-state") == "slow"
    assert notice.inner_text().startswith("Connection slow, retrying")
    # The loop carries on past a poll that timed out: more polls, each held in turn.
    page.wait_for_function("(n) => Number(document.getElementById('review').dataset.polls || 0) >= n", arg=before + 3)
    assert len(held) >= 2
    assert notice.get_attribute("data-state") == "slow"

    # Meanwhile the worker moves on; once the connection is back the page shows it.
    batch.record_progress(
        "fake-worker", [batch.ProgressUpdate(job.pk, claimed.attempt, 40, "Generating", "after the stall", 3)]
    )
    page.unroute(polls, hold)
    notice.wait_for(state="hidden")
    output_is(page, job, "after the stall")
    assert page.errors == []
