"""Accessibility, checked: axe-core (vendored, tests/vendor/) on every page of
the product and the admin pages we customise, at 1400 and 400 px, after each
page's main interaction. Any serious or critical violation fails.

Out of scope: /api/docs (the vendored Swagger UI is not ours to fix).
Fixtures: tests/browser_support.py; data: ``load_demo --with-results``."""

import io
import json
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from eval.models import LLMJob, Run, Task
from tests import browser_support as support

browser, server, user, web_settings = support.browser, support.server, support.user, support.web_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
FAILING = {"serious", "critical"}
SHOWN = FAILING | {"moderate"}
WIDTHS = [1400, 400]


def seed_demo():
    """The demo seed in a thread: its worker runs an event loop, and Playwright's
    sync API already has one in this thread."""
    failures = []

    def seed():
        try:
            call_command("load_demo", "--with-results", stdout=io.StringIO())
        except Exception as error:
            failures.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=seed)
    thread.start()
    thread.join(180)
    assert not thread.is_alive() and not failures, failures


def axe(page):
    """{rule id: (impact, [targets])} of axe's violations on the page as it is now."""
    page.add_script_tag(content=AXE)
    result = page.evaluate(
        "async () => JSON.stringify((await axe.run(document, {resultTypes: ['violations']})).violations)"
    )
    return {v["id"]: (v["impact"], len(v["nodes"]), [n["target"] for n in v["nodes"]][:5]) for v in json.loads(result)}


def _review(page):
    task = Task.objects.filter(source="demo").order_by("pk").first()
    page.goto(f"/tasks/{task.pk}/")
    page.wait_for_selector("main")


def _pairs(page):
    page.goto("/pairs/")
    page.wait_for_selector("main")
    verdict = page.locator("button[data-verdict]").first
    if verdict.count():
        verdict.click()
        page.wait_for_timeout(300)


def _run(page):
    run = Run.objects.order_by("pk").first()
    page.goto(f"/runs/{run.pk}/")
    page.wait_for_selector("main")


def _tokens(page):
    page.goto("/tokens/")
    page.fill("input[name=name]", "ci")
    # The token form's own button: the header's first submit button is "Log out", and
    # every page checked after this one would then be the login page.
    page.click("form.token-form button[type=submit]")
    page.wait_for_selector("#new-token")


def _datasets(page):
    page.goto("/datasets/")
    page.fill("#upload-dataset", "a11y")
    content = b'{"id": "1", "prompt": "p"}\n{"id": "2"}\n'
    page.set_input_files("#upload-file", files=[{"name": "a.jsonl", "mimeType": "text/plain", "buffer": content}])
    page.click("#preview-button")
    page.wait_for_selector("#preview:not([hidden])")


def _job_admin(page):
    job = LLMJob.objects.order_by("pk").first()
    page.goto(f"/admin/eval/llmjob/{job.pk}/change/")


def _judgements(page):
    """A win-rate cell of the results followed to its verdicts."""
    page.goto("/results/")
    page.locator("table.matrix td a").first.click()
    page.wait_for_url("**/judgements/?**")


def _judge_form(page):
    page.goto("/runs/")
    page.click("#judge-run summary")


PAGES = {
    "tasks": lambda page: page.goto("/"),
    "review": _review,
    "pairs": _pairs,
    "runs": lambda page: page.goto("/runs/"),
    "run": _run,
    "results": lambda page: page.goto("/results/"),
    "judgements": _judgements,
    "judge run form": _judge_form,
    "dashboard": lambda page: page.goto("/dashboard/"),
    "datasets": _datasets,
    "tokens": _tokens,
    "login": None,  # checked before logging in
    "admin task": lambda page: page.goto("/admin/eval/task/add/"),
    "admin jobs": lambda page: page.goto("/admin/eval/llmjob/"),
    "admin job": _job_admin,
    "admin rubric": lambda page: page.goto("/admin/eval/rubric/add/"),
}


def test_no_page_has_a_serious_or_critical_violation(browser, server, user):
    user.is_staff = user.is_superuser = True
    user.save()
    seed_demo()
    found = {}
    for width in WIDTHS:
        context = browser.new_context(base_url=server.url, viewport={"width": width, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto("/accounts/login/")
        found[("login", width)] = axe(page)
        page.fill("#id_username", "rita")
        page.fill("#id_password", support.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/")
        for name, visit in PAGES.items():
            if visit is None:
                continue
            visit(page)
            page.wait_for_load_state("load")
            assert "/accounts/login/" not in page.url, f"{name}: logged out, so the page itself was not checked"
            page.wait_for_timeout(400)  # the first poll fills what the server did not render
            found[(name, width)] = axe(page)
        context.close()
    report = {f"{name} @{width}": violations for (name, width), violations in found.items() if violations}
    counts = {key: {rule: f"{impact} x{n} {t}" for rule, (impact, n, t) in v.items()} for key, v in report.items()}
    print("axe violations:", json.dumps(counts, indent=1))
    failing = {
        key: {rule: detail for rule, detail in violations.items() if detail[0] in FAILING}
        for key, violations in report.items()
    }
    failing = {key: rules for key, rules in failing.items() if rules}
    assert not failing, json.dumps(failing, indent=1)
