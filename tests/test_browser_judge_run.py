"""A judge run made in a real browser: on /runs/ the "Judge two runs" form
picks run A and run B, echo-judge (offered there and not in the "New run"
form), swap on by default and the default rubric; it posts POST /api/runs
like `manage.py runs create --judge-compare`, and the worker's echo-judge
verdicts land as judgements of those two runs' outputs, both orders.
Fixtures: tests/browser_support.py."""

import time

import pytest
from django.contrib.auth.models import Permission

from eval.evaluation.runs import services as runs
from eval.models import Judgement, LLMJob, Run
from tests import browser_support as support
from tests.browser_support import make_task

browser, server, page = support.browser, support.server, support.page
user, web_settings, worker = support.user, support.web_settings, support.worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def launcher(user):
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def options(page, selector):
    return page.eval_on_selector_all(selector + " option", "nodes => nodes.map(n => n.value)")


def test_it_creates_a_judge_run_of_two_runs_from_the_form(page, launcher, worker):
    for n in range(2):
        make_task(words=6, source="judged", title=f"Judged {n}")
    a = runs.create_run(user=launcher, data={"name": "Verbatim", "provider": "echo", "model": "echo"})
    b = runs.create_run(user=launcher, data={"name": "Brief", "provider": "echo", "model": "echo-brief"})
    wait_for(lambda: LLMJob.objects.filter(run__in=[a, b], status="succeeded").count() == 4)

    page.goto("/runs/")
    assert "echo/echo-judge" not in options(page, "#run-model")
    page.click("#judge-run summary")
    assert "echo/echo-judge" in options(page, "#judge-model")
    assert page.input_value("#judge-model") == "echo/echo-judge"  # a judge-only model first
    assert page.is_checked("#judge-swap")
    assert page.locator("#judge-rubric option:checked").inner_text() == "default v1"
    page.select_option("#judge-a", str(a.pk))
    page.select_option("#judge-b", str(b.pk))
    page.click("#judge-submit")
    page.wait_for_selector("#judge-form-status a")
    launched = page.inner_text("#judge-form-status")
    assert launched.startswith("Launched judge run")
    # Both runs' jobs had all ended (stored "done" or not yet): no more judge jobs follow.
    assert launched.endswith(": 4 judge jobs."), launched

    judge = Run.objects.get(kind=Run.Kind.JUDGE)
    assert (judge.provider, judge.model, judge.swap) == ("echo", "echo-judge", True)
    assert (judge.compare_a_id, judge.compare_b_id, judge.rubric.name) == (a.pk, b.pk, "default")
    assert judge.name == "echo-judge: Verbatim vs Brief"
    page.wait_for_selector(f"#runs-body a[href='/runs/{judge.pk}/']")  # the list was told

    wait_for(lambda: Judgement.objects.filter(judge_job__run=judge).count() == 4)  # 2 tasks, both orders
    verdicts = Judgement.objects.filter(judge_job__run=judge)
    assert {frozenset((j.job_a.run_id, j.job_b.run_id)) for j in verdicts} == {frozenset((a.pk, b.pk))}
    assert sorted(j.shown_left.run_id for j in verdicts) == sorted([a.pk, a.pk, b.pk, b.pk])  # both ways round

    page.click("#judge-form-status a")
    page.wait_for_url(f"**/runs/{judge.pk}/")
    assert page.errors == []


def test_a_run_launched_from_the_new_run_form_can_be_judged_at_once(page, launcher):
    make_task(words=6, source="judged")
    page.goto("/runs/")
    page.fill("#run-name", "Fresh")
    page.select_option("#run-model", "echo/echo-reverse")
    page.click("#run-submit")
    page.wait_for_selector("#run-form-status a")
    fresh = Run.objects.get(name="Fresh")
    assert str(fresh.pk) in options(page, "#judge-a") and str(fresh.pk) in options(page, "#judge-b")
    assert page.errors == []


def test_it_says_what_is_wrong_before_posting(page, launcher):
    make_task(words=6, source="judged")
    a = runs.create_run(user=launcher, data={"name": "Only", "provider": "echo", "model": "echo"})
    page.goto("/runs/")
    page.click("#judge-run summary")
    page.select_option("#judge-a", str(a.pk))
    page.select_option("#judge-b", str(a.pk))
    page.click("#judge-submit")
    status = "() => document.getElementById('judge-form-status').textContent"
    page.wait_for_function(status + ".includes('two different runs')")
    assert page.get_attribute("#judge-b", "aria-invalid") == "true"
    assert not Run.objects.filter(kind=Run.Kind.JUDGE).exists()
