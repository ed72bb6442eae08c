"""Evaluation runs in a real browser: a run of the offline echo model over
three tasks created from the /runs/ form (the live count says 3), its page
watched until "done" while a worker runs; a run cancelled from its page after
the confirm; a launch above BULK_CONFIRM_COST_USD confirmed in the page and a
second one refused by the daily budget with what is left; both pages fit
400 px. Fixtures: tests/browser_support.py."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import NoReverseMatch, reverse

from eval.evaluation.runs import services as runs
from eval.models import LLMJob, Run
from tests import browser_support as support
from tests.browser_support import make_task

# The shared browser fixtures, used here by name.
browser, server, page = support.browser, support.server, support.page
user, web_settings, worker = support.user, support.web_settings, support.worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SOURCE = "runs-demo"


@pytest.fixture(autouse=True)
def runs_api():

    try:
        reverse("api-runs")
    except NoReverseMatch:
        pytest.skip("the runs API (/api/runs) is not in this build yet")


@pytest.fixture
def launcher(user):
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def three_tasks():
    make_task(source="elsewhere", title="Not selected")
    return [make_task(words=8, source=SOURCE, title=f"Run task {n}") for n in range(3)]


def fill_form(page, name, *, max_tokens=""):
    page.goto("/runs/")
    page.fill("#run-name", name)
    page.select_option("#run-model", "echo/echo")
    if max_tokens:
        page.fill("#run-max-tokens", str(max_tokens))
    page.select_option("#run-source", SOURCE)
    page.wait_for_function("() => document.getElementById('task-count').textContent.startsWith('3 tasks selected')")


def no_horizontal_overflow(page):
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_it_creates_a_run_from_the_form_and_watches_it_finish(page, launcher, worker):
    tasks = three_tasks()
    fill_form(page, "echo over the demo")
    page.click("#run-submit")
    page.wait_for_selector("#run-form-status a")
    assert page.inner_text("#run-form-status").startswith("Launched")
    run = Run.objects.get(name="echo over the demo")
    assert sorted(LLMJob.objects.filter(run=run).values_list("task_id", flat=True)) == sorted(t.pk for t in tasks)
    page.wait_for_selector(f"#runs-body a[href='/runs/{run.pk}/']")

    page.click("#run-form-status a")
    page.wait_for_url(f"**/runs/{run.pk}/")
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'done'")
    assert page.inner_text("[data-count=succeeded]") == "3"
    assert page.inner_text("#run-percent") == "100%"
    assert page.inner_text("#run-progress-text").startswith("Done: 3 of 3 jobs succeeded")
    assert page.is_hidden("#cancel-button") and page.is_hidden("#launch-button")
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING  # shown done; reads store nothing
    assert runs.finish_ended() == 1  # the daemon's pass stores it
    assert Run.objects.get(pk=run.pk).status == Run.Status.DONE

    page.set_viewport_size({"width": 400, "height": 800})
    assert no_horizontal_overflow(page)
    page.goto("/runs/")
    page.wait_for_selector(f"#runs-body a[href='/runs/{run.pk}/']")
    assert no_horizontal_overflow(page)
    assert page.errors == []


def test_it_cancels_a_run_after_the_confirm(page, launcher):
    three_tasks()  # no worker: the jobs stay queued
    fill_form(page, "to cancel")
    page.click("#run-submit")
    page.wait_for_selector("#run-form-status a")
    run = Run.objects.get(name="to cancel")
    page.goto(f"/runs/{run.pk}/")
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'running'")
    page.wait_for_function("() => document.querySelector('[data-count=queued]').textContent === '3'")

    page.click("#cancel-button")
    dialog = page.locator("dialog.confirm-dialog")
    dialog.wait_for(state="visible")
    assert "3 jobs not finished will be cancelled" in dialog.inner_text()
    page.keyboard.press("Enter")  # the first button keeps it running
    dialog.wait_for(state="detached")
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING

    page.click("#cancel-button")
    page.click("dialog.confirm-dialog button:has-text('Cancel the run')")
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'cancelled'")
    assert page.inner_text("[data-count=cancelled]") == "3"
    assert page.is_hidden("#cancel-button")
    assert set(LLMJob.objects.filter(run=run).values_list("status", flat=True)) == {"cancelled"}
    assert page.errors == []


def test_it_confirms_a_costly_launch_and_says_when_the_budget_is_spent(page, launcher, settings):
    # echo priced so that 3 tasks x 1,000 max tokens are $6: over the $5 threshold, inside a $10 budget once.
    settings.MODEL_PRICES = {"echo": (0, 2000)}
    settings.BULK_CONFIRM_COST_USD = 5
    settings.USER_DAILY_BUDGET_USD = 10
    three_tasks()
    fill_form(page, "costly", max_tokens=1000)
    # The server's estimate (a dry run of the create call), put in words by runs.js.
    page.wait_for_selector("#run-estimate:has-text('At most about $6.00 for 3 calls')")
    page.wait_for_selector("#budget-text:has-text('left')")
    page.click("#run-submit")
    dialog = page.locator("dialog.confirm-dialog")
    dialog.wait_for(state="visible")
    assert "Estimated $6.00 — above the $5.00 confirmation threshold. Launch anyway?" in dialog.inner_text()
    page.keyboard.press("Enter")  # Launch anyway
    page.wait_for_selector("#run-form-status a")
    assert Run.objects.filter(name="costly").count() == 1
    page.wait_for_selector("#budget-text:has-text('$4.00 left')")

    page.fill("#run-name", "costly again")
    page.click("#run-submit")
    page.locator("dialog.confirm-dialog").wait_for(state="visible")
    page.keyboard.press("Enter")
    page.wait_for_selector("#run-form-status:has-text('over your daily budget')")
    status = page.inner_text("#run-form-status")
    assert "$6.00" in status and "$4.00 is left today" in status
    assert not Run.objects.filter(name="costly again").exists()
    assert page.errors == []
