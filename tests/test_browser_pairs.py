"""Blind pairs (/pairs/) in a real browser, by keyboard alone: `a` and Enter
save a verdict (stored as a/b of its jobs through shown_left, blind), the
models are revealed above the next pair, `s` skips, `u` undoes (the pair
does not come back: its models were revealed); before the
verdict nothing the page asked or was told names a job, a task id, a model
or a provider; the page fits 400 px. Fixtures: tests/browser_support.py."""

import json
import re
import time

import pytest

from eval.jobs import endings
from eval.models import Judgement, PairAssignment
from tests import browser_support as support
from tests.browser_support import fake_running_job, make_task

# The shared browser fixtures, used here by name.
browser, server, page = support.browser, support.server, support.page
user, web_settings = support.user, support.web_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Three offline demo models; every task gets two of them, so each task is one pair.
MODELS = ["echo", "echo-brief", "echo-reverse"]
PAIRS = [("echo", "echo-brief"), ("echo", "echo-reverse"), ("echo-brief", "echo-reverse")]
OUTPUTS = {
    "echo": "Red, green and blue are three colours.",
    "echo-brief": "Red, green",
    "echo-reverse": "colours. three are blue and green Red,",
}


def finished_job(task, creator, model):
    job, claimed = fake_running_job(task, creator, model=model)
    output = OUTPUTS[model]
    assert endings.succeed_one(job.pk, "fake-worker", claimed.attempt, output=output, stop_reason="end_turn")
    return job


def seed(creator):
    """Three tasks, one pair each: {task title: (task, [job, job])}."""
    seeded = {}
    for n, models in enumerate(PAIRS):
        task = make_task(title=f"Colours {n}", prompt=f"Name three colours ({n}).", reference="red, green, blue")
        seeded[task.title] = (task, [finished_job(task, creator, model) for model in models])
    return seeded


def eventually(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def shown_title(tab):
    tab.wait_for_selector("#pair:not([hidden])")
    return tab.text_content("#pair-title")


def open_assignment(reviewer, title):
    return PairAssignment.objects.select_related("shown_left", "job_a", "job_b").get(
        user=reviewer, task__title=title, judgement__isnull=True, skipped_at__isnull=True
    )


def record_traffic(tab):
    """Every response the page gets, in order (read later: bodies stay available)."""
    responses = []
    tab.on("response", lambda response: responses.append(response))
    return responses


def assert_reveals_nothing(responses, dom, seeded):
    jobs = [job for _, pair_jobs in seeded.values() for job in pair_jobs]
    secrets = [str(job.pk) for job in jobs] + [job.pk.hex for job in jobs]
    names = re.compile(r"\becho(-brief|-reverse)?\b", re.IGNORECASE)  # the models, and the provider
    task_paths = [f"/tasks/{task.pk}" for task, _ in seeded.values()]
    assert any("/api/pairs/next" in response.url for response in responses), "the page asked for no pair"
    for response in responses:
        url = response.url
        assert not any(secret in url for secret in secrets + task_paths), url
        if "/static/" in url or response.status in (204, 302, 304):
            continue  # the same files for every pair; no body
        body = response.text()
        assert not any(secret in body for secret in secrets), url
        assert not names.search(body), (url, names.search(body).group(0))
        if "/api/" in url:
            assert '"model"' not in body and '"provider"' not in body, url
        if "/api/pairs/next" in url:
            answer = json.loads(body)
            assert set(answer) == {"pair", "task", "left", "right", "rubric", "remaining"}
            assert set(answer["task"]) == {"title", "prompt", "reference", "messages"}
            assert set(answer["left"]) == set(answer["right"]) == {"output"}
    assert not any(secret in dom for secret in secrets)
    assert not names.search(dom)
    assert "data-task" not in dom and "data-job" not in dom


def test_it_judges_blind_by_keyboard_reveals_skips_and_undoes(page, user):
    seeded = seed(user)
    responses = record_traffic(page)
    page.goto("/pairs/")
    first = shown_title(page)
    assert page.text_content("#remaining-count") == "3"
    assert_reveals_nothing(responses, page.content(), seeded)

    # a = left is better; Enter saves and opens the next pair.
    assignment = open_assignment(user, first)
    page.keyboard.press("a")
    assert page.get_attribute("button.verdict[value=left]", "aria-pressed") == "true"
    page.keyboard.press("Enter")
    page.wait_for_selector("#reveal:not([hidden])")
    page.wait_for_function("(t) => document.getElementById('pair-title').textContent !== t", arg=first)
    second = shown_title(page)
    left, right = (
        assignment.shown_left,
        (assignment.job_b if assignment.shown_left_id == assignment.job_a_id else assignment.job_a),
    )
    assert page.text_content("#reveal-models") == f"Left was {left.model}, right was {right.model}."
    assert first in page.text_content("#reveal-verdict")
    assert page.text_content("#remaining-count") == "2"
    judgement = Judgement.objects.get(reviewer=user)
    assert judgement.kind == "pairwise" and judgement.blind is True and judgement.withdrawn_at is None
    assert judgement.shown_left_id == assignment.shown_left_id
    assert judgement.verdict == ("a" if assignment.shown_left_id == judgement.job_a_id else "b")
    assert {judgement.job_a_id, judgement.job_b_id} == {assignment.job_a_id, assignment.job_b_id}

    # s skips: another pair comes, the skipped one is marked and comes back last.
    page.keyboard.press("s")
    page.wait_for_function("(t) => document.getElementById('pair-title').textContent !== t", arg=second)
    third = shown_title(page)
    assert third not in (first, second)
    assert "Skipped" in page.text_content("#pair-notice")
    assert PairAssignment.objects.get(user=user, task__title=second).skipped_at is not None

    # ArrowRight = right is better, stored through shown_left as well.
    assignment = open_assignment(user, third)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_function("(t) => document.getElementById('pair-title').textContent === t", arg=second)
    latest = Judgement.objects.filter(reviewer=user).latest("id")
    assert latest.verdict == ("b" if assignment.shown_left_id == latest.job_a_id else "a") and latest.blind

    # u withdraws the last verdict (kept, not counted). Its models were revealed, so the
    # pair does not come back blind: the count stays (issue 18: blind is a fact).
    assert page.text_content("#remaining-count") == "1"
    page.keyboard.press("u")
    page.wait_for_selector("#reveal.withdrawn")
    eventually(lambda: Judgement.objects.get(pk=latest.pk).withdrawn_at is not None)
    assert "Undone" in page.text_content("#reveal-verdict")
    assert "will not come back" in page.text_content("#reveal-verdict")
    assert Judgement.objects.get(pk=judgement.pk).withdrawn_at is None  # only the last one
    assert page.text_content("#remaining-count") == "1" and shown_title(page) == second
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    page.wait_for_selector("#pairs-done:not([hidden])")  # the withdrawn pair is not served again
    assert not PairAssignment.objects.filter(user=user, task__title=third, judgement__isnull=True).exists()
    assert page.errors == []


def test_it_ends_with_a_friendly_note_and_fits_a_phone(page, user):
    task = make_task(title="Only pair", prompt="Name a colour.")
    for model in MODELS[:2]:
        finished_job(task, user, model)
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto("/pairs/")
    shown_title(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    boxes = [page.locator(".pane").nth(n).bounding_box() for n in (0, 1)]
    assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"]  # stacked, left on top
    page.keyboard.press("x")
    page.keyboard.press("Enter")
    page.wait_for_selector("#pairs-done:not([hidden])")
    assert "Nothing left to compare" in page.text_content("#pairs-done")
    assert Judgement.objects.get(reviewer=user).verdict == "both_bad"
    page.goto("/tasks/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    assert page.errors == []
