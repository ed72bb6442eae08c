"""From a results figure to the judgements behind it, in a real browser, on
the demo comparison (``load_demo --with-results``): a row's name and a
win-rate cell link to /judgements/ with the page's filters and the segment
(humans blind, the LLM judge...), which lists exactly the verdicts counted;
the export links on the results, runs and run pages carry the filters and
download what GET /api/exports gives. Fixtures: tests/browser_support.py."""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db.models import Q

from eval.evaluation.exports import Export
from eval.models import Judgement, Run
from tests import browser_support as support
from tests import test_browser_results as results_tests

browser, server, page = support.browser, support.server, support.page
user, web_settings = support.user, support.web_settings
demo = results_tests.demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff_user(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def listed_ids(page):
    return [
        int(i)
        for i in page.eval_on_selector_all("#judgements-table tbody tr", "rows => rows.map(r => r.dataset.judgement)")
    ]


def query_of(url):
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_a_results_row_and_a_win_rate_cell_lead_to_their_judgements(page, staff_user, demo):
    results_tests.open_results(page)
    blind = page.locator(".result-group").first
    first_row = blind.locator(".results-table").first.locator("tbody tr").first
    counted = int(first_row.locator("td").first.inner_text())
    first_row.locator("th a").click()
    page.wait_for_url("**/judgements/?**")
    assert query_of(page.url) == {"judged_by": "human", "blind": "true", "model": "echo/echo"}
    blind_echo = Judgement.objects.filter(reviewer__isnull=False, blind=True).filter(
        Q(job_a__model="echo") | Q(job_b__model="echo")
    )
    assert sorted(listed_ids(page)) == sorted(blind_echo.values_list("pk", flat=True))
    assert len(listed_ids(page)) == counted  # the row's "Judgements" figure
    assert "judged by humans" in page.inner_text(".judgement-filters") and "blind" in page.inner_text(
        ".judgement-filters"
    )
    assert page.errors == []

    results_tests.open_results(page)
    judge_group = page.locator(".result-group", has=page.locator("h2", has_text="LLM judge echo/echo-judge"))
    cell = judge_group.locator("table.matrix tbody tr").first.locator("td a").first
    n = int(cell.locator(".cell-n").inner_text().removeprefix("n = "))
    cell.click()
    page.wait_for_url("**/judgements/?**")
    asked = query_of(page.url)
    assert asked["judge"] == "echo/echo-judge" and asked["kind"] == "pairwise"
    assert asked["model"] == "echo/echo,echo/echo-brief"
    shown = Judgement.objects.filter(pk__in=listed_ids(page))
    assert len(listed_ids(page)) == n > 0
    assert {frozenset((j.job_a.model, j.job_b.model)) for j in shown} == {frozenset(("echo", "echo-brief"))}
    assert all(j.judge_model == "echo-judge" for j in shown)
    page.set_viewport_size({"width": 400, "height": 800})
    assert results_tests.no_horizontal_overflow(page)
    assert page.errors == []


def test_the_export_links_carry_the_filters_and_download(page, staff_user, demo):
    runs = list(Run.objects.filter(kind="generate").order_by("id").values_list("id", flat=True)[:2])
    page.goto(f"/results/?runs={runs[0]}&runs={runs[1]}")
    link = page.locator(".exports a[aria-label='Export judgements as JSONL']")
    assert query_of(link.get_attribute("href")) == {"runs": f"{runs[0]},{runs[1]}"}
    with page.expect_download() as download:
        link.click()
    got = [json.loads(line) for line in Path(download.value.path()).read_text(encoding="utf-8").splitlines()]
    expected = [json.loads(line) for line in "".join(Export("judgements", "jsonl", runs=runs)).splitlines()]
    assert got == expected and len(got) > 0

    page.goto("/runs/")
    assert page.get_attribute(".exports a[aria-label='Export tasks as CSV']", "href") == "/api/exports/tasks.csv"

    judge_run = Run.objects.get(kind="judge")
    page.goto(f"/runs/{judge_run.pk}/")
    pairs = page.locator(".exports a[aria-label='Export preference pairs as JSONL']")
    assert pairs.get_attribute("href") == f"/api/exports/pairs.jsonl?run={judge_run.pk}"
    with page.expect_download() as download:
        pairs.click()
    assert download.value.suggested_filename.startswith(f"pairs-run{judge_run.pk}-")
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len("".join(Export("pairs", "jsonl", run=judge_run.pk)).splitlines()) > 0
    page.click(".exports a:text('Its judgements')")
    page.wait_for_url(f"**/judgements/?run={judge_run.pk}")
    assert len(listed_ids(page)) == min(50, Judgement.objects.filter(judge_job__run=judge_run).count())
    assert page.errors == []


def test_reviewers_get_no_export_links_and_no_judgements_page(page, demo):
    page.goto("/runs/")
    assert page.locator(".exports").count() == 0
    assert page.goto("/judgements/").status == 403
