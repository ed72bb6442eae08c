"""The compare page in a real browser: two runs over four tasks, the summary
(regressions, fixes and p per check), the rows side by side with the word
diff, the "regressions only" filter, j/k through the rows. Fixtures:
tests/browser_support.py."""

import pytest

from eval.models import Run
from tests import browser_support as support
from tests.browser_support import make_task
from tests.run_fixtures import make_run, settle

browser, server, page = support.browser, support.server, support.page
user, web_settings = support.user, support.web_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_compare_page_filtered_to_regressions(page, user):
    a = make_run(user, name="before", status=Run.Status.DONE)
    b = make_run(user, name="after", model="echo-brief", status=Run.Status.DONE)
    tasks = [make_task(words=4, title=f"Compare task {n}", reference="word0 word1 word2 word3") for n in range(4)]
    for n, task in enumerate(tasks):
        settle(a, task, "word0 word1 word2 word3", checks={"exact": True})
        broke = n < 2
        settle(b, task, "word0 word1" if broke else "word0 word1 word2 word3", checks={"exact": not broke})
    page.goto(f"/runs/compare?a={a.pk}&b={b.pk}")
    page.wait_for_selector("#summary-checks tr")
    assert page.inner_text("#summary-checks tr").split("\t") == ["exact", "2", "0", "4", "0.250", "0.250"]
    assert page.inner_text("#summary-gate") == "No significant regression (alpha 0.05, Holm across 1 test)."
    assert page.locator("#compare-rows > li").count() == 4
    page.select_option("#filter-only", "regressions")
    page.wait_for_function("() => document.querySelectorAll('#compare-rows > li').length === 2")
    assert "only=regressions" in page.url  # the filtered view can be linked: reloaded, it stays filtered
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#compare-rows > li').length === 2")
    assert page.input_value("#filter-only") == "regressions"
    first = page.locator("#compare-rows > li").first
    assert first.locator(".compare-task-link").inner_text() == "Compare task 0"
    # The page's own URLs come from base.html (api.pageUrl), not spelled in the script.
    assert first.locator(".compare-task-link").get_attribute("href") == f"/tasks/{tasks[0].pk}/"
    assert "regression" in first.locator(".compare-row-checks").inner_text()
    page.wait_for_function("() => document.querySelectorAll('#compare-rows del').length === 2")
    assert first.locator("del").inner_text().strip() == "word2 word3"  # only in A
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate("() => document.activeElement.dataset.task") == str(tasks[1].pk)
    page.set_viewport_size({"width": 400, "height": 800})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path="/tmp/compare-regressions.png", full_page=True)
    assert not page.errors


def test_the_compare_page_says_what_the_gate_decides(page, user):
    """The page gave the raw p only; the command also says p after Holm and whether
    B regressed. The page now says both, as `runs compare` decides."""
    a = make_run(user, name="before", status=Run.Status.DONE)
    b = make_run(user, name="after", model="echo-brief", status=Run.Status.DONE)
    for n in range(6):
        task = make_task(words=4, title=f"Gate task {n}", reference="word0 word1 word2 word3")
        settle(a, task, "word0 word1 word2 word3", checks={"exact": True})
        settle(b, task, "word0 word1", checks={"exact": False})
    page.goto(f"/runs/compare?a={a.pk}&b={b.pk}&check=exact")
    page.wait_for_selector("#summary-checks tr.worse")
    assert page.inner_text("#summary-checks tr").split("\t") == ["exact", "6", "0", "6", "0.016", "0.016"]
    gate = page.inner_text("#summary-gate")
    assert gate == "B regressed: check exact (6 regressions, 0 fixes, p = 0.016 after Holm)."
    assert page.input_value("#filter-check") == "exact"
    assert not page.errors


def test_a_change_too_small_to_show_reads_as_none(page, user):
    """Δ duration read "−0.0 s" and "+0.0 s"."""
    page.goto("/runs/compare")
    found = page.evaluate(
        """async () => {
            const f = await import("/static/eval/format.js");
            return [f.signed(-0.01, f.duration), f.signed(0.04, f.duration), f.signed(-2.5, f.duration), f.signed(3)];
        }"""
    )
    assert found == ["±0.0 s", "±0.0 s", "−2.5 s", "+3"]
