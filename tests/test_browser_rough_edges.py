"""Rough edges a new reviewer met (issue: the whole evaluation from the
browser), each in a real browser: a refused launch reads as an error, the
diff says what its colours mean. Fixtures: tests/browser_support.py."""

import pytest
from django.contrib.auth.models import Permission

from tests.browser_support import make_task
from tests.test_browser_review import finished_job, open_review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BAD = "rgb(176, 0, 32)"  # --bad in app.css


def test_a_refused_launch_is_shown_in_the_error_colour_and_progress_is_not(page, user):
    task = make_task()
    open_review(page, task, settled=False)
    page.fill("#run-max-tokens", "-5")
    page.click(".run-button[data-model=echo]")
    page.wait_for_function("() => document.getElementById('run-status').textContent.startsWith('Not started')")
    assert page.eval_on_selector("#run-status", "el => getComputedStyle(el).color") == BAD
    page.fill("#run-max-tokens", "50")
    page.click(".run-button[data-model=echo]")
    page.wait_for_selector(".job-card")
    assert page.eval_on_selector("#run-status", "el => getComputedStyle(el).color") != BAD


def test_the_diff_has_a_legend(page, user):
    task = make_task()
    finished_job(task, user, "one two three", model="echo", worker_id="w-1")
    finished_job(task, user, "one three four", model="echo-brief", worker_id="w-2")
    open_review(page, task)
    assert page.locator("#diff-legend").is_hidden()
    page.click("#diff-button")
    legend = page.locator("#diff-legend")
    legend.wait_for(state="visible")
    assert "only in the second output" in legend.inner_text() and "only in the first" in legend.inner_text()
    assert page.locator("#diff-output ins").count() and page.locator("#diff-output del").count()


def test_a_draft_the_server_refuses_says_the_servers_reason_and_the_notes_say_their_limit(page, user):
    task = make_task()
    open_review(page, task, settled=False)
    assert page.get_attribute("#review-notes", "maxlength") == "100000"
    assert "up to 100000 characters" in page.inner_text("label.notes")
    # A script (or a paste an extension let through) can put more in than maxlength allows.
    page.eval_on_selector(
        "#review-notes",
        "el => { el.value = 'é'.repeat(300000); el.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.wait_for_function("() => document.body.innerText.includes('the draft was not kept')")
    text = page.inner_text("body")
    assert "at most 512 KB" in text and "the server did not answer" not in text


@pytest.fixture
def launcher(user):
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def test_the_run_form_refuses_a_negative_limit_and_names_an_unknown_task_id(page, launcher):
    tasks = [make_task(source="edge") for _ in range(2)]
    page.goto("/runs/")
    page.select_option("#run-model", "echo/echo")
    page.fill("#run-limit", "-3")
    page.wait_for_function("() => document.getElementById('task-count').textContent.startsWith('The limit must')")
    page.fill("#run-limit", "")
    page.fill("#run-ids", f"{tasks[0].pk}, {tasks[1].pk}, 9999")
    page.wait_for_function("() => document.getElementById('task-count').textContent.includes('9999')")
    assert "no task with id 9999" in page.inner_text("#task-count")
    page.fill("#run-ids", f"{tasks[0].pk}, {tasks[1].pk}")
    page.wait_for_function("() => document.getElementById('task-count').textContent.startsWith('2 tasks selected')")


def test_a_new_token_has_a_copy_button_and_breaks_anywhere_at_400_px(page, user, server):
    """At 400 px the token wrapped at its own "-" (a reader copying by hand could take
    it for a line-end hyphen), and there was nothing to copy it with."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto("/tokens/")
    page.fill("input[name=name]", "nightly export")
    page.click("form.token-form button[type=submit]")
    token = page.inner_text("#new-token").strip()
    assert page.eval_on_selector("#new-token", "el => getComputedStyle(el).wordBreak") == "break-all"
    page.click("#copy-token")
    page.wait_for_function("() => document.getElementById('copy-status').textContent === 'Copied.'")
    assert page.evaluate("() => navigator.clipboard.readText()") == token
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert not page.errors


def test_a_selected_cards_badge_does_not_cover_the_keys_hint(page, user):
    """The "selected · 1–5 score it" badge sits on the card's ring, above the card:
    on the first row it covered the end of the keys hint."""
    task = make_task()
    finished_job(task, user, "word0 word1")
    open_review(page, task)
    page.keyboard.press("j")
    page.wait_for_selector(".job-card.selected")
    badge_top, hint_bottom = page.evaluate(
        """() => {
            const card = document.querySelector(".job-card.selected");
            const badge = getComputedStyle(card, "::before");
            const top = card.getBoundingClientRect().top + parseFloat(badge.top);
            return [top, document.getElementById("keys-hint").getBoundingClientRect().bottom];
        }"""
    )
    assert badge_top >= hint_bottom, (badge_top, hint_bottom)
