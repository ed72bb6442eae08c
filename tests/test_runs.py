"""Runs as services: the estimate, confirm and budget refusals, parallel
launches against the budget, bulk creation, cancel, status."""

import threading
from decimal import Decimal
from math import ceil

import pytest
from django.db import connection, connections

from eval.evaluation.errors import BudgetExceeded, ConfirmCost
from eval.evaluation.runs import services as runs
from eval.jobs import claims, endings, outbox, quota, transitions
from eval.jobs.errors import JobError
from eval.models import DailySpend, LLMJob, Run, Task
from eval.providers import catalogue, pricing

# $1 per million input tokens, $2 per million output ones.
PRICES = {"echo": [1, 2]}


@pytest.fixture
def priced(settings):
    settings.MODEL_PRICES = PRICES
    settings.BULK_CONFIRM_COST_USD = 5.0
    settings.USER_DAILY_BUDGET_USD = 0.0
    return settings


def body(**extra):
    return {"name": "r", "provider": "echo", "model": "echo", **extra}


def expected(prompts, max_tokens):
    tokens_in = sum(ceil(len(p) / 4) for p in prompts)
    return (Decimal(tokens_in) + Decimal(2 * max_tokens * len(prompts))) / Decimal(1_000_000)


@pytest.mark.django_db
def test_it_prices_from_model_prices_before_the_table(settings):
    entry = catalogue.get("echo")
    settings.MODEL_PRICES = {}
    assert pricing.cost(entry, "echo", 1000, 1000) == Decimal("0")
    settings.MODEL_PRICES = {"echo": [1, 2], "echo-b": [3, 4]}
    assert pricing.cost(entry, "echo-brief", 1_000_000, 0) == Decimal("3")  # the longest prefix wins
    assert pricing.cost(entry, "echo", 1_000_000, 1_000_000) == Decimal("3")


@pytest.mark.django_db
def test_it_estimates_prompt_characters_over_four_plus_max_tokens(priced, make_task, staff):
    prompts = ["x" * 5, "y" * 8, "z" * 401]
    for prompt in prompts:
        make_task(prompt=prompt)
    run = runs.create_run(user=staff, data=body(params={"max_tokens": 100}))
    assert run.status == Run.Status.RUNNING
    assert run.estimated_cost_usd == expected(prompts, 100).quantize(pricing.MICRODOLLAR)
    jobs = LLMJob.objects.filter(run=run)
    assert jobs.count() == 3 and set(jobs.values_list("priority", flat=True)) == {LLMJob.Priority.BULK}
    assert set(jobs.values_list("created_by", flat=True)) == {staff.pk}


@pytest.mark.django_db
def test_it_asks_to_confirm_an_expensive_run_and_leaves_nothing(priced, make_task, staff):
    priced.BULK_CONFIRM_COST_USD = 0.001
    make_task(prompt="a" * 4000)
    with pytest.raises(ConfirmCost) as refused:
        runs.create_run(user=staff, data=body())
    estimate = refused.value.estimated
    assert refused.value.code == "confirm_cost" and estimate > Decimal("0.001")
    assert not Run.objects.exists() and not LLMJob.objects.exists()
    with pytest.raises(ConfirmCost):
        runs.create_run(user=staff, data=body(confirm_cost_usd=float(estimate) / 2))
    run = runs.create_run(user=staff, data=body(confirm_cost_usd=float(estimate)))
    assert run.status == Run.Status.RUNNING and LLMJob.objects.filter(run=run).count() == 1


@pytest.mark.django_db
def test_it_refuses_over_the_budget_and_reserves_what_it_launches(priced, make_task, staff):
    priced.USER_DAILY_BUDGET_USD = 0.005
    make_task(prompt="p" * 40)  # 10 tokens in + 1024 out at $2/M: 0.002058
    first = runs.create_run(user=staff, data=body())
    assert DailySpend.objects.get(user=staff).reserved_usd == first.estimated_cost_usd == Decimal("0.002058")
    runs.create_run(user=staff, data=body())
    with pytest.raises(BudgetExceeded) as refused:
        runs.create_run(user=staff, data=body())
    assert refused.value.code == "budget_exceeded" and refused.value.estimated == Decimal("0.002058")
    assert Run.objects.count() == 2 and LLMJob.objects.count() == 2
    assert quota.summary(staff)["left_usd"] == pytest.approx(0.005 - 2 * 0.002058)


@pytest.mark.django_db
def test_it_refuses_over_the_runs_max_cost(priced, make_task, staff):
    make_task(prompt="p" * 40)
    with pytest.raises(BudgetExceeded) as refused:
        runs.create_run(user=staff, data=body(max_cost_usd=0.001))
    assert "max_cost_usd" in refused.value.message and not Run.objects.exists()


@pytest.mark.django_db
def test_it_validates_the_body(staff, make_task):
    cases = [
        ({"name": ""}, "name"),
        (body(provider="nope"), "provider"),
        (body(params={"max_tokens": 0}), "params.max_tokens"),
        (body(tasks={"status": "weird"}), "tasks.status"),
        (body(tasks={"ids": ["1"]}), "tasks.ids"),
        (body(checks=[{"type": "regex", "pattern": "("}]), "checks"),
        (body(kind="judge"), "judge"),
        (body(judge={"score": 1}), "judge"),
        (body(schedule="every day"), "schedule"),
    ]
    for data, field in cases:
        with pytest.raises(JobError) as refused:
            runs.create_run(user=staff, data=data)
        assert (refused.value.code, refused.value.field) == ("invalid", field), data
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_selects_by_source_status_ids_and_limit(make_task, staff):
    a, b, c = make_task(), make_task(status=Task.Status.DONE), make_task(source="other")
    empty = make_task(prompt="  ")

    def picked(tasks):
        run = runs.create_run(user=staff, data=body(tasks=tasks))
        return set(LLMJob.objects.filter(run=run).values_list("task_id", flat=True)), run

    assert picked({"status": "open"})[0] == {a.pk, c.pk}
    assert picked({"source": "tests", "limit": 1})[0] == {a.pk}
    chosen, run = picked({"ids": [b.pk, empty.pk]})
    assert chosen == {b.pk} and run.skipped == [(empty.pk, "the task's prompt is empty")]


@pytest.mark.django_db
def test_a_schedule_stays_scheduled_with_its_next_firing(staff, make_task):
    make_task()
    run = runs.create_run(user=staff, data=body(schedule="0 6 * * *"))
    assert run.status == Run.Status.SCHEDULED and run.next_run_at is not None
    assert not LLMJob.objects.exists()
    child = runs.launch_now(run, by=staff)
    assert child.parent_id == run.pk and child.status == Run.Status.RUNNING
    assert LLMJob.objects.filter(run=child).count() == 1


@pytest.mark.django_db
def test_it_cancels_queued_jobs_and_asks_running_ones_to_stop(staff, make_task, priced):
    priced.USER_DAILY_BUDGET_USD = 1.0
    for _ in range(3):
        make_task(prompt="word " * 8)
    run = runs.create_run(user=staff, data=body())
    reserved = DailySpend.objects.get(user=staff).reserved_usd
    running = claims.claim_next("w1", 1)[0]
    run = runs.cancel(run, by=staff)
    assert run.status == Run.Status.CANCELLED
    statuses = dict(LLMJob.objects.filter(run=run).values_list("id", "status"))
    assert sorted(statuses.values()) == ["cancelled", "cancelled", "running"]
    assert LLMJob.objects.get(pk=running.id).cancel_requested
    # Held while a job still runs; the daemon's pass settles it to what was spent once it stops.
    assert DailySpend.objects.get(user=staff).reserved_usd == reserved > 0
    assert quota.settle() == 0
    assert endings.finish_cancel(running.id, "w1", running.attempt)
    assert quota.settle() == 1 and quota.settle() == 0
    assert DailySpend.objects.get(user=staff).reserved_usd == 0
    assert Run.objects.get(pk=run.pk).reserved_usd is None
    with pytest.raises(transitions.JobConflict):
        runs.cancel(run, by=staff)


@pytest.mark.django_db
def test_it_is_done_when_every_job_ended(staff, make_task):
    make_task()
    run = runs.create_run(user=staff, data=body())
    job = claims.claim_next("w1", 1)[0]
    assert runs.refresh_status(run).status == Run.Status.RUNNING
    endings.succeed_one(job.id, "w1", job.attempt, output="x", stop_reason="end_turn")
    run = runs.refresh_status(run)
    assert run.status == Run.Status.DONE and run.finished_at is not None
    data = runs.run_json(run)
    assert data["counts"]["succeeded"] == 1 and data["progress"] == 100


@pytest.mark.django_db
def test_an_empty_selection_is_done_at_once(staff):
    run = runs.create_run(user=staff, data=body())
    assert run.status == Run.Status.DONE and runs.run_json(run)["counts"]["queued"] == 0


@pytest.mark.django_db
def test_bulk_creation_publishes_each_batch_on_commit(
    staff, make_task, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.JOB_TRANSPORT = "pubsub"
    published = []
    monkeypatch.setattr(
        "eval.broker.publish", lambda messages, timeout=None: [published.append(m.job_id) or m.job_id for m in messages]
    )
    # The background publisher's work, done inline: this test's rows are visible to this thread only.
    monkeypatch.setattr(outbox.background, "submit", outbox.publish)
    Task.objects.bulk_create([Task(source="s", external_id=f"e{i}", prompt=f"p {i}") for i in range(25)])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = runs.launch(
            runs.child_of(
                Run.objects.create(name="x", provider="echo", model="echo", params={"max_tokens": 5}), by=staff
            ),
            batch_size=10,
        )
    assert len(callbacks) == 3
    assert sorted(published) == sorted(LLMJob.objects.filter(run=run).values_list("id", flat=True))
    assert LLMJob.objects.filter(run=run, published_at__isnull=False).count() == 25


# --- parallel launches against the budget (PostgreSQL: real concurrent transactions) --------


@pytest.mark.django_db(transaction=True)
def test_parallel_launches_never_overspend_the_budget(priced, make_task, staff):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    priced.USER_DAILY_BUDGET_USD = 0.01
    make_task(prompt="p" * 40)  # 0.002058 a launch: 4 fit in 0.01
    barrier, outcomes = threading.Barrier(8), []

    def launch():
        try:
            barrier.wait()
            runs.create_run(user=staff, data=body())
            outcomes.append("ok")
        except BudgetExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=launch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["ok"] * 4 + ["refused"] * 4
    assert DailySpend.objects.get(user=staff).reserved_usd == Decimal("0.002058") * 4
    assert Run.objects.count() == 4 and LLMJob.objects.count() == 4


@pytest.mark.django_db
def test_a_judge_run_is_launched_through_the_judges(staff, make_task):
    pytest.importorskip("eval.evaluation.runs.judges")
    make_task()
    a = runs.create_run(user=staff, data=body(name="a"))
    b = runs.create_run(user=staff, data=body(name="b", model="echo-brief"))
    judge = runs.create_run(
        user=staff,
        data=body(name="j", kind="judge", model="echo-judge", judge={"compare": [a.pk, b.pk], "swap": True}),
    )
    assert judge.status == Run.Status.RUNNING and judge.kind == Run.Kind.JUDGE
    data = runs.run_json(judge)
    assert data["judge"]["compare"] == [a.pk, b.pk] and data["judge"]["swap"] is True
    assert data["judge"]["rubric"]["name"] == "default"
