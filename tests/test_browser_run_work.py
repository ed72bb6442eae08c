"""A run's page in a real browser: every task's output in the review page's
card, live while the worker runs the run; the "Failed checks" filter; a link
to each task's review page. Fixtures: tests/browser_support.py."""

import pytest
from django.contrib.auth.models import Permission

from eval.evaluation.runs import services as runs
from eval.models import Run
from tests import browser_support as support
from tests.browser_support import make_task
from tests.run_fixtures import make_run, settle

browser, server, page = support.browser, support.server, support.page
user, web_settings, worker = support.user, support.web_settings, support.worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_running_run_shows_its_outputs_as_they_come(page, user, worker):
    for n in range(3):
        make_task(words=6, source="work", title=f"Work task {n}", reference="word0 word1 word2 word3 word4 word5")
    run = runs.create_run(
        user=user,
        data={
            "name": "live",
            "provider": "echo",
            "model": "echo",
            "tasks": {"source": "work"},
            "checks": [{"type": "exact"}],
        },
    )
    page.goto(f"/runs/{run.pk}/")
    page.wait_for_function("() => document.querySelectorAll('#run-jobs .job-card[data-status=succeeded]').length === 3")
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'done'")
    card = page.locator("#run-jobs .job-card").first
    assert "word0 word1" in card.locator(".job-output").inner_text()
    assert card.locator(".job-checks").inner_text() == "exact ✓ passed"
    assert card.locator(".job-task-link").inner_text() == "Work task 0"
    assert page.inner_text("#run-jobs-count").startswith("3 jobs")
    assert not page.errors


def test_the_failed_checks_filter_the_task_links_and_the_baseline(page, user):
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    run = make_run(user, status=Run.Status.DONE)
    good, bad = (make_task(words=3, title=title, reference="word0 word1 word2") for title in ("Good", "Bad"))
    settle(run, good, "word0 word1 word2", checks={"exact": True})
    settle(run, bad, "something else", checks={"exact": False})
    page.goto(f"/runs/{run.pk}/")
    page.wait_for_function("() => document.querySelectorAll('#run-jobs .job-card').length === 2")
    page.screenshot(path="/tmp/run-page.png", full_page=True)
    page.click("#baseline-button")
    page.wait_for_selector("#baseline-badge:not([hidden])")
    assert page.is_hidden("#baseline-button") and Run.objects.get(pk=run.pk).baseline_of == "browser"
    page.click("#run-jobs-filters [data-show=failed_checks]")
    page.wait_for_function("() => document.querySelectorAll('#run-jobs .job-card').length === 1")
    card = page.locator("#run-jobs .job-card")
    assert card.locator(".job-task-link").inner_text() == "Bad"
    assert card.locator(".job-checks").inner_text() == "exact ✗ failed"
    card.locator(".job-task-link").click()
    page.wait_for_url(f"**/tasks/{bad.pk}/")
    assert not page.errors
