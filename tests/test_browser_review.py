"""The review page holds up on a long day (issue 10), in a real browser: a
draft survives a reload, leaving with unsaved work asks first, a held `r`
starts one job, `j`/`k` and a digit score an output, a cut-off answer is
marked, paid launches show their cost, out-of-range params are refused, and
the page fits a 400 px screen. Fixtures: tests/browser_support.py."""

import time

import pytest

from eval.jobs import endings
from eval.models import Judgement, LLMJob, Review, ReviewDraft
from tests.browser_support import fake_running_job, make_task
from tests.helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_ANSWER = "# Plan\n\n" + "\n".join(f"- step {i}: a line long enough to need scrolling in a pane" for i in range(80))


def finished_job(task, user, output, model="echo", stop_reason="end_turn", params=None, worker_id="fake-worker"):
    job, claimed = fake_running_job(task, user, worker_id=worker_id, model=model, params=params)
    endings.succeed_one(job.pk, worker_id, claimed.attempt, output=output, stop_reason=stop_reason)
    return job


def open_review(page, task, settled=True):
    page.goto(f"/tasks/{task.id}/")
    if settled:
        page.wait_for_selector(".job-card[data-status=succeeded] .job-score .score-q")


def test_it_restores_a_draft_after_a_reload(page, user):
    task = make_task()
    open_review(page, task, settled=False)
    page.click("#review-notes")
    page.keyboard.type("half-way through")
    page.keyboard.press("Escape")
    page.keyboard.press("3")
    wait_for(
        lambda: ReviewDraft.objects.filter(task=task, user=user, data__review__notes="half-way through").exists(),
        message="the draft on the server",
    )
    page.reload()
    page.wait_for_selector("#draft-note:not([hidden])")
    assert "Restored your unsaved draft" in page.inner_text("#draft-note")
    assert page.input_value("#review-notes") == "half-way through"
    assert page.is_checked("input[name=rating][value='3']")
    page.keyboard.press("s")
    page.wait_for_selector("#review-status[data-saved]")
    review = Review.objects.get(task=task, reviewer=user)
    assert (review.rating, review.notes) == (3, "half-way through")
    wait_for(lambda: not ReviewDraft.objects.filter(task=task).exists(), message="saving clears the draft")
    assert page.errors == []


def test_it_asks_before_p_takes_unsaved_work_away(page, user):
    first, second = make_task(), make_task()
    open_review(page, second, settled=False)
    page.click("#review-notes")
    page.keyboard.type("not saved yet")
    page.keyboard.press("Escape")
    page.keyboard.press("p")
    dialog = page.locator("dialog.confirm-dialog")
    dialog.wait_for(state="visible")
    assert "Unsaved changes" in dialog.inner_text()
    assert page.url.endswith(f"/tasks/{second.id}/")
    page.keyboard.press("Escape")  # stay
    dialog.wait_for(state="detached")
    assert page.url.endswith(f"/tasks/{second.id}/")
    page.keyboard.press("p")
    page.click("dialog.confirm-dialog button:has-text('Go without saving')")
    page.wait_for_url(f"**/tasks/{first.id}/")
    # Not saved, but kept: the draft is on the server.
    assert not Review.objects.filter(task=second).exists()
    assert ReviewDraft.objects.get(task=second, user=user).data["review"]["notes"] == "not saved yet"
    assert page.errors == []


def test_it_starts_one_job_for_a_held_r(page, user):
    task = make_task()
    open_review(page, task, settled=False)
    page.wait_for_function("() => Number(document.getElementById('review').dataset.polls || 0) > 0")
    for _ in range(6):  # the first keydown, then the key's auto-repeat (event.repeat)
        page.keyboard.down("r")
    page.keyboard.up("r")
    page.wait_for_selector(".job-card")
    time.sleep(1)
    assert LLMJob.objects.filter(task=task).count() == 1
    assert page.locator(".job-card").count() == 1
    # Once the card shows the job, the launch line says nothing more ("Queued echo." went away).
    assert page.inner_text("#run-status") == ""


def test_it_scores_the_selected_output_with_j_k_and_a_digit(page, user):
    task = make_task()
    first = finished_job(task, user, "First answer.")
    second = finished_job(task, user, "Second answer.", model="echo-brief", worker_id="fake-2")
    open_review(page, task)
    assert page.inner_text(f"#job-{first.pk} .job-label") == "A"
    assert page.inner_text(f"#job-{second.pk} .job-label") == "B"
    assert page.inner_text(f"#job-{second.pk} .job-short-id") == str(second.pk)[:8]
    page.keyboard.press("j")  # A
    page.keyboard.press("j")  # B
    page.keyboard.press("k")  # back to A
    assert page.evaluate("document.activeElement.id") == f"job-{first.pk}"
    assert page.locator(f"#job-{first.pk}.selected").count() == 1
    page.keyboard.press("2")
    page.wait_for_selector(f"#job-{first.pk} .score-state.saved")
    judgement = Judgement.objects.get(task=task, reviewer=user)
    assert (judgement.kind, judgement.job_a_id, judgement.answers) == ("score", first.pk, {"quality": 2})
    assert judgement.withdrawn_at is None
    assert f"A · echo · {str(first.pk)[:8]}" in page.inner_text("#judgement-list")
    # The overall rating is untouched while an output is selected.
    assert page.is_checked("input[name=rating][value='']")
    page.keyboard.press("u")
    wait_for(lambda: Judgement.objects.get(pk=judgement.pk).withdrawn_at is not None, message="the undo")
    page.keyboard.press("Escape")
    page.keyboard.press("4")  # nothing selected: the overall rating
    assert page.is_checked("input[name=rating][value='4']")
    assert page.errors == []


def test_it_marks_an_answer_cut_off_at_max_tokens(page, user):
    task = make_task()
    job = finished_job(task, user, "word0 word1 word2", stop_reason="max_tokens", params={"max_tokens": 3})
    open_review(page, task)
    card = page.locator(f"#job-{job.pk}")
    assert card.locator(".job-status").inner_text() == "succeeded"
    assert card.locator(".job-cutoff").inner_text() == "Cut off at max tokens (3)"
    assert card.locator(".job-params").inner_text().startswith("max tokens 3")


def test_stop_reasons_read_the_same_whatever_the_provider_calls_them(page, user):
    """OpenAI's "length" is a cut-off like Anthropic's "max_tokens" (it was not marked),
    and "stop" beside "end_turn" looked like two outcomes."""
    task = make_task()
    cut = finished_job(task, user, "word0 word1", model="echo", stop_reason="length", params={"max_tokens": 2})
    done = finished_job(task, user, "word0", model="echo-brief", stop_reason="stop", worker_id="fake-2")
    open_review(page, task)
    assert page.locator(f"#job-{cut.pk} .job-cutoff").inner_text() == "Cut off at max tokens (2)"
    assert page.locator(f"#job-{cut.pk} .job-stop").inner_text() == "max tokens"
    stop = page.locator(f"#job-{done.pk} .job-stop")
    assert stop.inner_text() == "finished" and stop.get_attribute("title") == "The provider's stop reason: stop"


def test_it_shows_markdown_from_the_beginning_with_a_raw_toggle(page, user):
    task = make_task(prompt="Write **bold** and a list:\n\n- one\n- two")
    job = finished_job(task, user, LONG_ANSWER + "\n\n```\ncode <b>here</b>\n```")
    open_review(page, task)
    assert page.locator("#task-prompt strong").inner_text() == "bold"
    output = page.locator(f"#job-{job.pk} .job-output")
    assert output.locator("h1").inner_text() == "Plan"
    assert output.locator("pre code").inner_text().strip() == "code <b>here</b>"
    assert output.locator("b").count() == 0
    geometry = output.evaluate("el => [el.scrollTop, el.scrollHeight, el.clientHeight]")
    assert geometry[0] == 0 and geometry[1] > geometry[2]  # opens at its beginning
    page.keyboard.press("m")
    page.wait_for_selector(f"#job-{job.pk} .job-output.raw")
    assert output.inner_text().startswith("# Plan\n")
    assert page.locator("#task-prompt").inner_text().startswith("Write **bold**")
    page.keyboard.press("m")
    page.wait_for_selector(f"#job-{job.pk} .job-output.md")


def test_it_asks_before_a_paid_launch_and_refuses_bad_params(page, user, web_settings):
    web_settings.ANTHROPIC_API_KEY = "test-key"
    web_settings.ANTHROPIC_MODELS = ["claude-sonnet-4-test:8192"]
    task = make_task()
    open_review(page, task, settled=False)
    page.click(".run-button[data-model='claude-sonnet-4-test']")
    dialog = page.locator("dialog.confirm-dialog")
    dialog.wait_for(state="visible")
    assert "Estimated cost" in dialog.inner_text() and "÷ 4" in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert not LLMJob.objects.filter(task=task).exists()
    page.fill("#run-max-tokens", "-5")
    page.click(".run-button[data-model=echo]")
    page.wait_for_function("() => document.getElementById('run-status').textContent.startsWith('Not started')")
    assert page.get_attribute("#run-max-tokens", "aria-invalid") == "true"
    assert page.input_value("#run-max-tokens") == "-5"  # not clamped to 1
    assert not LLMJob.objects.filter(task=task).exists()


def test_it_fits_a_400_px_screen(page, user):
    task = make_task(prompt="A" * 300 + "\n\n| a | b |\n|---|---|\n| " + "x" * 200 + " | y |")
    jobs = [
        finished_job(task, user, LONG_ANSWER, model=model, worker_id=f"w-{model}")
        for model in ("echo", "echo-brief", "echo-reverse")
    ]
    page.set_viewport_size({"width": 400, "height": 800})
    open_review(page, task)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 400
    lefts = {round(page.locator(f"#job-{job.pk}").bounding_box()["x"]) for job in jobs}
    assert len(lefts) == 1  # one column: the cards stack


def test_it_says_a_rate_limit_once(page, user, web_settings):
    web_settings.JOB_CREATE_RATE = (1, 3600)
    task = make_task()
    open_review(page, task, settled=False)
    page.click(".run-button[data-model=echo]")
    page.wait_for_selector(".job-card")
    page.click(".run-button[data-model=echo]")
    page.wait_for_function("() => document.getElementById('run-status').textContent.startsWith('Not started')")
    text = page.inner_text("#run-status")
    assert text.count("try again in") == 1 and "retry in" not in text
    assert LLMJob.objects.filter(task=task).count() == 1


def test_it_saves_and_opens_the_next_task_to_review(page, user):
    task, reviewed, waiting = make_task(), make_task(), make_task()
    Review.objects.create(task=reviewed, reviewer=user, rating=3)
    open_review(page, task, settled=False)
    page.keyboard.press("5")
    page.keyboard.press("Shift+S")
    page.wait_for_url(f"**/tasks/{waiting.id}/")  # skips the one already reviewed
    assert Review.objects.get(task=task, reviewer=user).rating == 5
    assert page.dialog_types == []  # nothing was left unsaved: no "leave this page?"
