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
    assert page.inner_text("#summary-checks tr").split("\t") == ["exact", "2", "0", "4", "0.250"]
    assert page.locator("#compare-rows > li").count() == 4
    page.select_option("#filter-only", "regressions")
    page.wait_for_function("() => document.querySelectorAll('#compare-rows > li').length === 2")
    first = page.locator("#compare-rows > li").first
    assert first.locator(".compare-task-link").inner_text() == "Compare task 0"
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
