"""One daily budget for every spend (eval/jobs/quota.py): single launches,
retries, runs, schedule firings and judge runs reserve against
USER_DAILY_BUDGET_USD the same way, are refused with the same 409
``budget_exceeded``, and give their reservation up for their real cost once
they end, on the day they reserved. A model with no price is refused while a
budget is set. Parallel single launches and runs on PostgreSQL never overspend."""

import json
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from eval.daemon.passes import Pass
from eval.evaluation.runs import costs as run_costs
from eval.evaluation.runs import schedules
from eval.evaluation.runs import services as runs
from eval.jobs import claims, create, endings, quota
from eval.jobs.errors import BudgetExceeded
from eval.models import DailySpend, LLMJob, Run
from tests.helpers import login

# Output tokens only, $50 a million: 1,000 max_tokens is $0.05 a call whatever the prompt.
PRICES = {"echo": [0, 50]}
ONE_CALL = Decimal("0.05")
JOB = {"provider": "echo", "model": "echo", "params": {"max_tokens": 1000}}


@pytest.fixture
def budgeted(plain_http):
    settings = plain_http
    settings.MODEL_PRICES = PRICES
    settings.USER_DAILY_BUDGET_USD = 2.0
    settings.BULK_CONFIRM_COST_USD = 100.0
    settings.JOB_CREATE_RATE = (10_000, 60)
    settings.MAX_QUEUED_JOBS_PER_USER = 10_000
    return settings


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def committed(user, day=None):
    row = DailySpend.objects.filter(user=user, day=day or quota.today()).first()
    return row.reserved_usd if row else Decimal("0")


def end(job, *, cost=None, fail=False):
    """Run ``job`` to its end on worker w1 (which claims whatever is queued), at ``cost``."""
    claims.claim_next("w1", 1000)
    attempt = LLMJob.objects.get(pk=job.pk, worker_id="w1", status="running").attempts
    if fail:
        assert endings.fail(job.pk, "w1", attempt, code="server_error", cost=cost)
    else:
        assert endings.succeed_one(job.pk, "w1", attempt, output="x", stop_reason="end_turn", cost=cost)


# --- single launches (the review page's POST) --------------------------------------------


@pytest.mark.django_db
def test_80_single_launches_stop_at_the_budget(budgeted, reviewer, task):
    client = login(reviewer)
    answers = [post(client, f"/api/tasks/{task.id}/jobs", JOB) for _ in range(80)]
    statuses = [a.status_code for a in answers]
    assert statuses == [201] * 40 + [409] * 40  # 40 x $0.05 = the $2 budget
    assert answers[-1].json()["error"] | {"message": ""} == {
        "code": "budget_exceeded",
        "message": "",
        "estimated_cost_usd": 0.05,
    }
    assert "daily budget" in answers[-1].json()["error"]["message"]
    assert LLMJob.objects.count() == 40 and committed(reviewer) == Decimal("2.0")
    assert set(LLMJob.objects.values_list("reserved_usd", flat=True)) == {ONE_CALL}
    summary = client.get("/api/budget").json()
    assert summary["reserved_usd"] == 2.0 and summary["left_usd"] == 0.0


@pytest.mark.django_db
def test_an_ended_job_gives_back_what_it_did_not_spend(budgeted, reviewer, task):
    budgeted.USER_DAILY_BUDGET_USD = 0.1
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    assert [post(client, url, JOB).status_code for _ in range(3)] == [201, 201, 409]
    first = LLMJob.objects.order_by("created_at").first()
    end(first, cost=Decimal("0.01"))
    # A read settles nothing, but shows what ended at its real cost.
    assert client.get("/api/budget").json()["reserved_usd"] == pytest.approx(0.06)
    assert committed(reviewer) == Decimal("0.1")
    # A launch settles what ended before it checks: 0.01 + 0.05 + 0.05 is still over 0.1
    # (and its refusal rolls its settling back); the daemon's pass settles it for good.
    assert post(client, url, JOB).status_code == 409 and committed(reviewer) == Decimal("0.1")
    assert Pass(source="").finish_runs() and committed(reviewer) == Decimal("0.06")
    assert LLMJob.objects.get(pk=first.pk).reserved_usd is None
    budgeted.USER_DAILY_BUDGET_USD = 0.11
    assert post(client, url, JOB).status_code == 201
    assert committed(reviewer) == Decimal("0.11")


@pytest.mark.django_db
def test_a_reservation_is_settled_on_the_day_it_was_made(budgeted, reviewer, task, monkeypatch):
    monkeypatch.setattr(quota, "today", lambda: date(2026, 1, 1))
    job, _ = create.create_job(task=task, created_by=reviewer, **JOB)
    assert job.reserved_on == date(2026, 1, 1) and committed(reviewer, date(2026, 1, 1)) == ONE_CALL
    monkeypatch.setattr(quota, "today", lambda: date(2026, 1, 2))
    end(job, cost=Decimal("0.02"))
    assert Pass(source="").finish_runs() and quota.settle() == 0
    assert committed(reviewer, date(2026, 1, 1)) == Decimal("0.02")
    assert not DailySpend.objects.filter(day=date(2026, 1, 2)).exists()


@pytest.mark.django_db
def test_a_single_job_reserves_for_what_it_sends(budgeted, reviewer, make_task):
    budgeted.MODEL_PRICES = {"echo": [10, 0]}  # input only: $10 a million tokens
    messages = [
        {"role": "system", "content": "s" * 400},
        {"role": "user", "content": "u" * 2000},
        {"role": "assistant", "content": "a" * 1200},
        {"role": "user", "content": "q" * 400},
    ]
    task = make_task(prompt="q" * 400, messages=messages)
    job, _ = create.create_job(task=task, created_by=reviewer, provider="echo", model="echo")
    assert job.reserved_usd == Decimal("0.01")  # 4,000 characters sent: 1,000 tokens, not the prompt's 100


# --- retries --------------------------------------------------------------------------


@pytest.mark.django_db
def test_retries_reserve_like_any_launch(budgeted, reviewer, task):
    budgeted.USER_DAILY_BUDGET_USD = 0.1
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    first = post(client, url, JOB).json()["id"]
    second = post(client, url, JOB).json()["id"]
    end(LLMJob.objects.get(pk=first), fail=True, cost=Decimal("0.01"))  # a paid-for call that failed
    retried = post(client, f"/api/jobs/{first}/retry", {})
    assert retried.status_code == 409 and retried.json()["error"]["code"] == "budget_exceeded"
    end(LLMJob.objects.get(pk=second), fail=True)  # failed before anything was paid for
    retried = post(client, f"/api/jobs/{first}/retry", {})
    assert retried.status_code == 201
    assert LLMJob.objects.get(pk=retried.json()["id"]).reserved_usd == ONE_CALL
    assert committed(reviewer) == Decimal("0.06")
    again = post(client, f"/api/jobs/{second}/retry", {})
    assert again.status_code == 409 and again.json()["error"]["estimated_cost_usd"] == 0.05
    assert LLMJob.objects.count() == 3


# --- runs, firings and judge runs -----------------------------------------------------------


def run_body(**extra):
    return {"name": "r", "provider": "echo", "model": "echo", "params": {"max_tokens": 1000}, **extra}


@pytest.mark.django_db
def test_runs_and_single_launches_share_one_budget(budgeted, staff, make_task):
    budgeted.USER_DAILY_BUDGET_USD = 0.2
    task = make_task()
    make_task()
    run = runs.create_run(user=staff, data=run_body())  # two tasks: $0.10
    assert run.reserved_usd == Decimal("0.1") and run.reserved_on == quota.today()
    create.create_job(task=task, created_by=staff, **JOB)
    create.create_job(task=task, created_by=staff, **JOB)
    with pytest.raises(BudgetExceeded):
        create.create_job(task=task, created_by=staff, **JOB)
    with pytest.raises(BudgetExceeded):
        runs.create_run(user=staff, data=run_body())
    assert committed(staff) == Decimal("0.2")
    for job in LLMJob.objects.filter(run=run):
        end(job, cost=Decimal("0.001"))
    assert runs.refresh_status(run).status == Run.Status.DONE
    assert quota.settle() == 1
    assert committed(staff) == Decimal("0.102") and Run.objects.get(pk=run.pk).reserved_usd is None


@pytest.mark.django_db
def test_a_schedule_firing_reserves_against_what_single_launches_left(budgeted, staff, make_task):
    budgeted.USER_DAILY_BUDGET_USD = 0.2
    task = make_task(source="weekly")
    make_task(source="weekly")  # a firing is two tasks: $0.10
    now = timezone.now()
    parent = Run.objects.create(
        name="weekly",
        provider="echo",
        model="echo",
        params={"max_tokens": 1000},
        selection={"source": "weekly"},
        schedule="0 3 * * *",
        next_run_at=now - timedelta(minutes=1),
        created_by=staff,
    )
    singles = [create.create_job(task=task, created_by=staff, **JOB)[0] for _ in range(3)]  # $0.15
    (firing,) = schedules.fire_due(now=now)
    assert firing.child is None and "daily budget" in firing.refused
    end(singles[0], cost=Decimal("0.001"))
    Run.objects.filter(pk=parent.pk).update(next_run_at=now - timedelta(minutes=1))
    (firing,) = schedules.fire_due(now=now)  # the ended job settles first: 0.101 + 0.10 > 0.2
    assert firing.child is None
    end(singles[1], cost=Decimal("0.001"))
    Run.objects.filter(pk=parent.pk).update(next_run_at=now - timedelta(minutes=1))
    (firing,) = schedules.fire_due(now=now)  # 0.052 + 0.10
    assert firing.child is not None and firing.child.reserved_usd == Decimal("0.1")
    assert committed(staff) == Decimal("0.152")


@pytest.mark.django_db
def test_a_judge_run_reserves_and_its_judge_jobs_settle_it(budgeted, staff, make_task):
    budgeted.USER_DAILY_BUDGET_USD = 0  # the judged runs: no budget yet
    make_task()
    a = runs.create_run(user=staff, data=run_body(name="a"))
    b = runs.create_run(user=staff, data=run_body(name="b", model="echo-brief"))
    for job in LLMJob.objects.filter(run__in=[a, b]):
        end(job)
    judge = {"compare": [a.pk, b.pk], "swap": True}
    estimate = run_costs.estimate(
        Run(
            kind="judge",
            provider="echo",
            model="echo-judge",
            params={"max_tokens": 1000},
            compare_a=a,
            compare_b=b,
            swap=True,
        )
    )[0].usd
    assert estimate == 2 * ONE_CALL  # two judge calls (swap), output priced only
    budgeted.USER_DAILY_BUDGET_USD = float(estimate) - 0.01
    body = run_body(name="j", kind="judge", model="echo-judge", judge=judge)
    with pytest.raises(BudgetExceeded):
        runs.create_run(user=staff, data=body)
    assert not LLMJob.objects.filter(kind="judge").exists()
    budgeted.USER_DAILY_BUDGET_USD = float(estimate)
    run = runs.create_run(user=staff, data=body)
    assert committed(staff) == estimate == run.reserved_usd
    judge_jobs = LLMJob.objects.filter(run=run, kind="judge")
    assert judge_jobs.count() == 2 and set(judge_jobs.values_list("reserved_usd", flat=True)) == {None}
    with pytest.raises(BudgetExceeded):  # the judge run holds the whole budget
        runs.create_run(user=staff, data=run_body())
    for job in judge_jobs:
        end(job, cost=Decimal("0.003"))
    assert runs.refresh_status(run).status == Run.Status.DONE
    assert Pass(source="").finish_runs() and committed(staff) == Decimal("0.006")


@pytest.mark.django_db
def test_a_cancelled_run_keeps_its_reservation_while_a_job_still_runs(budgeted, staff, make_task):
    for _ in range(3):
        make_task()
    run = runs.create_run(user=staff, data=run_body())
    running = claims.claim_next("w1", 1)[0]
    runs.cancel(run, by=staff)
    assert committed(staff) == Decimal("0.15")
    assert endings.fail(running.id, "w1", running.attempt, code="server_error", cost=Decimal("0.004"))
    create.create_job(task=run.jobs.first().task, created_by=staff, **JOB)  # settles the run first
    assert committed(staff) == Decimal("0.054")


# --- models with no price -------------------------------------------------------------------


@pytest.fixture
def anthropic(budgeted):
    budgeted.ANTHROPIC_API_KEY = "sk-test"
    budgeted.ANTHROPIC_MODELS = ["claude-test-1:64000"]
    return budgeted


@pytest.mark.django_db
def test_a_model_with_no_price_is_refused_while_a_budget_is_set(anthropic, staff, task):
    client = login(staff)
    body = {"provider": "anthropic", "model": "claude-test-1"}
    for answer in (
        post(client, f"/api/tasks/{task.id}/jobs", body),
        post(client, "/api/runs", {"name": "r", **body}),
    ):
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "invalid" and error["field"] == "model" and "MODEL_PRICES" in error["message"]
    assert not LLMJob.objects.exists() and not Run.objects.exists() and committed(staff) == 0
    # The offline echo models are free, priced or not.
    anthropic.MODEL_PRICES = {}
    assert post(client, f"/api/tasks/{task.id}/jobs", {"provider": "echo", "model": "echo-brief"}).status_code == 201
    # Priced, it reserves; with budgets off, nothing is asked.
    anthropic.MODEL_PRICES = {"claude-test": [3, 15]}
    assert post(client, f"/api/tasks/{task.id}/jobs", body).status_code == 201 and committed(staff) > 0
    anthropic.MODEL_PRICES, anthropic.USER_DAILY_BUDGET_USD = {}, 0
    assert post(client, f"/api/tasks/{task.id}/jobs", body).status_code == 201
    # Launched without a price, a run shows no estimate and no cost: unknown, not $0.
    run = post(client, "/api/runs", {"name": "unpriced", **body}).json()
    assert (run["estimated_cost_usd"], run["cost_usd"]) == (None, None)


# --- parallel spends on PostgreSQL ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_single_launches_and_runs_never_overspend(budgeted, staff, make_task):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    budgeted.USER_DAILY_BUDGET_USD = 0.5
    task = make_task()
    make_task()  # a run is two tasks: $0.10; a single launch $0.05
    threads, attempts = 12, 3
    barrier, outcomes, errors = threading.Barrier(threads), [], []

    def spend(n):
        try:
            barrier.wait()
            for _ in range(attempts):
                try:
                    if n % 3 == 0:
                        runs.create_run(user=staff, data=run_body())
                        outcomes.append("run")
                    else:
                        create.create_job(
                            task=task, created_by=staff, admit=lambda: quota.check_job_creation(staff), **JOB
                        )
                        outcomes.append("job")
                except BudgetExceeded:
                    outcomes.append("refused")
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=spend, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors
    assert len(outcomes) == threads * attempts and outcomes.count("refused") > 0
    spent = outcomes.count("run") * Decimal("0.1") + outcomes.count("job") * ONE_CALL
    assert spent <= Decimal("0.5") and committed(staff) == spent
    assert Run.objects.count() == outcomes.count("run")
    assert LLMJob.objects.filter(run__isnull=True).count() == outcomes.count("job")
