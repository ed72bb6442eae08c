"""Two runs task by task (eval/evaluation/compare, GET /api/runs/compare):
which job counts, which checks and tasks are compared, regressions and fixes
with the exact binomial p, judge verdicts per task (both swap orders once),
human verdicts as counts (who said what for staff only), filters and pages,
and "compare" never read as a run id."""

import pytest
from django.urls import resolve

from eval.evaluation.compare import gate, service
from eval.evaluation.results.stats import binomial_p_at_least, holm
from eval.models import Judgement, LLMJob, Rubric, Run
from tests.helpers import login
from tests.run_fixtures import make_run, settle

pytestmark = pytest.mark.django_db

PASS, FAIL = {"exact": True}, {"exact": False}


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def compared(a, b, **options):
    comparison = service.build(a, b)
    return service.summary(comparison), service.rows(comparison, **options)


def two_runs(staff, make_task, outcomes, **fields):
    """Runs A and B over one task per (A's result, B's result) in ``outcomes``."""
    a, b = make_run(staff, name="A", **fields), make_run(staff, name="B", model="echo-brief", **fields)
    tasks = []
    for result_a, result_b in outcomes:
        task = make_task(reference="r")
        settle(a, task, "r", checks=result_a)
        settle(b, task, "r" if result_b == PASS else "x", checks=result_b)
        tasks.append(task)
    return a, b, tasks


def test_the_exact_binomial_p_and_holm_by_hand():
    assert binomial_p_at_least(0, 0) == 1.0 and binomial_p_at_least(0, 7) == 1.0
    assert binomial_p_at_least(5, 5) == 1 / 32 and binomial_p_at_least(5, 6) == 7 / 64
    assert binomial_p_at_least(1, 2) == 0.75
    assert binomial_p_at_least(5000, 10_000) == pytest.approx(0.503989323)  # exact for big n, no overflow
    assert 0 < binomial_p_at_least(6000, 10_000) < 1e-80
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06] and holm([0.6, 0.9]) == [1.0, 1.0]


def test_regressions_and_fixes_per_check_with_p(staff, make_task):
    a, b, _ = two_runs(staff, make_task, [(PASS, FAIL)] * 5 + [(PASS, PASS), (FAIL, FAIL)])
    summary, (rows, following, count) = compared(a, b)
    assert summary["checks"] == [{"check": "exact", "regressions": 5, "fixes": 0, "tasks": 7, "p_value": 1 / 32}]
    assert summary["tasks"] == {"compared": 7, "prompt_changed": 0, "only_a": 0, "only_b": 0, "changed_output": 6}
    assert count == 7 and following is None  # (FAIL, FAIL): B wrote "x", A "r"
    assert [r["checks"][0]["change"] for r in rows] == ["regression"] * 5 + [None, None]
    assert summary["cost_usd"] == {"a": 0.007, "b": 0.007}
    decision = gate.decide(service.build(a, b))
    assert decision["regressed"] and decision["tests"][0]["p_holm"] == 1 / 32
    assert not gate.decide(service.build(a, b), alpha=0.01)["regressed"]
    assert not gate.decide(service.build(b, a))["regressed"]  # the other way round they are fixes


def test_a_failed_job_fails_every_check_and_the_latest_ended_job_counts(staff, make_task):
    a, b = make_run(staff), make_run(staff)
    broke, retried, live = make_task(reference="r"), make_task(reference="r"), make_task(reference="r")
    for task in (broke, retried, live):
        settle(a, task, "r", checks=PASS)
    settle(b, broke, status="failed")
    settle(b, retried, status="failed")
    newer = settle(b, retried, "r", checks=PASS)  # a retry that succeeded: it counts
    settle(b, live, "r", checks=PASS)
    LLMJob.objects.filter(pk=newer.pk).update(finished_at=newer.finished_at.replace(year=2099))
    settle(b, live, "", status="queued", finished_at=None)  # not ended: does not count
    summary, (rows, _, _) = compared(a, b)
    by_task = {row["task"]: row for row in rows}
    assert by_task[broke.pk]["checks"][0] == {"check": "exact", "a": True, "b": False, "change": "regression"}
    assert by_task[retried.pk]["b"] == str(newer.pk) and by_task[retried.pk]["checks"][0]["change"] is None
    assert summary["checks"][0]["regressions"] == 1


def test_only_checks_both_ran_alike_and_tasks_with_the_same_prompt(staff, make_task):
    a = make_run(staff, checks=())
    b = make_run(staff, checks=())
    a.checks = [{"type": "exact"}, {"type": "regex", "pattern": "x"}]
    b.checks = [{"type": "exact"}, {"type": "regex", "pattern": "y"}, {"type": "json_valid"}]
    a.save(), b.save()
    same, changed, only_a = make_task(reference="r"), make_task(reference="r"), make_task(reference="r")
    for task in (same, changed, only_a):
        settle(a, task, "r", checks={"exact": True, "regex": True})
    settle(b, same, "r", checks={"exact": True, "regex": False, "json_valid": False})
    settle(b, changed, "r", checks={"exact": False}, prompt_hash="f" * 64)  # made from another prompt
    summary, (rows, _, _) = compared(a, b)
    assert [c["check"] for c in summary["checks"]] == ["exact"]
    assert summary["checks_left_out"] == ["json_valid", "regex /x/", "regex /y/"]
    assert summary["tasks"] == {"compared": 1, "prompt_changed": 1, "only_a": 1, "only_b": 0, "changed_output": 0}
    assert [row["task"] for row in rows] == [same.pk]


def judge(run_a, run_b, task, verdict, judge_run, *, reverse=False):
    """A judge judgement of the two runs' jobs of ``task`` (in the shown order, reversed with ``reverse``)."""
    job_a, job_b = (LLMJob.objects.get(run=r, task=task) for r in (run_a, run_b))
    if reverse:
        job_a, job_b = job_b, job_a
    judge_job = settle(judge_run, task, "{}", kind=LLMJob.Kind.JUDGE, judged_a=job_a, judged_b=job_b)
    return Judgement.objects.create(
        kind="pairwise",
        task=task,
        judge_job=judge_job,
        job_a=job_a,
        job_b=job_b,
        output_hash_a=job_a.output_hash,
        output_hash_b=job_b.output_hash,
        prompt_hash=task.prompt_hash,
        rubric=Rubric.objects.get_or_create(name="t", version=1)[0],
        verdict=verdict,
        shown_left=job_a,
    )


def test_judge_verdicts_per_task_with_both_swap_orders_once(staff, make_task):
    a, b, tasks = two_runs(staff, make_task, [(PASS, PASS)] * 5)
    judge_run = make_run(staff, kind=Run.Kind.JUDGE, compare_a=b, compare_b=a, swap=True, model="echo-judge")
    for task in tasks[:4]:  # A better in both orders: shown first ("a"), then shown second ("b")
        judge(a, b, task, "a", judge_run)
        judge(a, b, task, "b", judge_run, reverse=True)
    judge(a, b, tasks[4], "a", judge_run)  # the orders disagree: a tie
    judge(a, b, tasks[4], "a", judge_run, reverse=True)
    summary, (rows, _, _) = compared(a, b)
    [verdicts] = summary["verdicts"]
    assert (verdicts["a_wins"], verdicts["b_wins"], verdicts["ties"], verdicts["both_bad"]) == (4, 0, 1, 0)
    assert verdicts["p_value"] == 1 / 16 and verdicts["judge_run"] == judge_run.pk
    assert [row["verdicts"][0]["outcome"] for row in rows] == ["a", "a", "a", "a", "tie"]
    decision = gate.decide(service.build(a, b))
    assert [t["kind"] for t in decision["tests"]] == ["check", "judge"] and not decision["regressed"]  # 1/16 > .05
    assert service.rows(service.build(a, b), only="regressions")[2] == 4  # a judge preferring A is a regression


def test_the_api_rows_filters_pages_and_reviewers_for_staff(staff, reviewer, make_task, settings):
    settings.POLL_OUTPUT_CHARS = 10
    a, b, tasks = two_runs(staff, make_task, [(PASS, FAIL), (PASS, PASS), (FAIL, PASS)] * 20)
    LLMJob.objects.filter(run=a, task=tasks[0]).update(output="a long output " * 10)
    job_a, job_b = LLMJob.objects.get(run=a, task=tasks[1]), LLMJob.objects.get(run=b, task=tasks[1])
    Judgement.objects.create(
        kind="pairwise", task=tasks[1], reviewer=reviewer, job_a=job_b, job_b=job_a, verdict="a", shown_left=job_b,
        output_hash_a="x", output_hash_b="y", prompt_hash=tasks[1].prompt_hash,
        rubric=Rubric.objects.get_or_create(name="t", version=1)[0],
    )  # fmt: skip
    url = f"/api/runs/compare?a={a.pk}&b={b.pk}"
    data = login(reviewer).get(url).json()
    assert data["a"]["id"] == a.pk and data["b"]["model"] == "echo-brief" and data["count"] == 60
    assert len(data["rows"]) == 50 and data["next"] == data["rows"][-1]["task"]
    first = data["rows"][0]
    assert first["a"]["output_truncated"] and first["a"]["output"] == "a long out" and first["title"]
    assert first["delta"] == {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "duration_s": 0.0}
    assert data["summary"]["humans"] == {"a_wins": 0, "b_wins": 1, "ties": 0, "both_bad": 0}
    assert "reviewers" not in data["rows"][1] or data["rows"][1]["reviewers"] is None
    rest = login(reviewer).get(url + f"&after={data['next']}").json()
    assert len(rest["rows"]) == 10 and rest["next"] is None
    staff_view = login(staff).get(url).json()["rows"][1]
    assert staff_view["reviewers"] == [{"reviewer": "alice", "outcome": "b"}] and staff_view["humans"]["b_wins"] == 1
    regressions = login(reviewer).get(url + "&only=regressions").json()
    assert regressions["count"] == 20 and {r["checks"][0]["change"] for r in regressions["rows"]} == {"regression"}
    assert login(reviewer).get(url + "&only=changed").json()["count"] == 20  # B wrote "x" where it failed
    assert login(reviewer).get(url + "&check=exact&only=regressions").json()["count"] == 20
    refused = login(reviewer).get(url + "&check=regex")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "check"


def test_compare_is_never_read_as_a_run_id(staff, reviewer, outsider, make_task):
    assert resolve("/api/runs/compare").url_name == "api-runs-compare"
    assert resolve("/api/runs/12").url_name == "api-run"
    answer = login(reviewer).get("/api/runs/compare")  # no a, b: a bad query, not "no such run"
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid"
    a, b, _ = two_runs(staff, make_task, [(PASS, PASS)])
    assert login(reviewer).get(f"/api/runs/compare?a={a.pk}&b={b.pk}").status_code == 200
    assert login(reviewer).get(f"/api/runs/compare?a={a.pk}&b={b.pk + 100}").status_code == 404
    assert login(outsider).get(f"/api/runs/compare?a={a.pk}&b={b.pk}").status_code == 404


def test_the_compare_page_frame(reviewer, outsider, staff, make_task):
    a, b, _ = two_runs(staff, make_task, [(PASS, PASS)])
    html = login(reviewer).get(f"/runs/compare?a={a.pk}&b={b.pk}").content.decode()
    assert f'data-a="{a.pk}" data-b="{b.pk}"' in html and "compare.js" in html and 'id="filter-only"' in html
    assert f'<option value="{a.pk}" selected>' in html
    assert 'data-a="' not in login(reviewer).get("/runs/compare").content.decode()  # choose two runs first
    a.baseline_of = "tests"
    a.save()
    html = login(reviewer).get(f"/runs/compare?b={b.pk}").content.decode()  # from B's page: A is the baseline
    assert f'data-a="{a.pk}" data-b="{b.pk}"' in html
    assert login(outsider).get("/runs/compare").status_code == 403
    assert login(reviewer).get("/runs/compare?a=99999999999999999999").status_code == 400
