"""Scheduled runs: cron expressions, and the daemon's step that fires each due
schedule once (eval/evaluation/schedules.py). The clock is injected (now=)."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from eval.daemon import passes
from eval.evaluation.errors import BudgetExceeded, InvalidInput
from eval.evaluation.runs import cron, schedules
from eval.evaluation.runs import services as runs
from eval.models import DailySpend, LLMJob, Run
from eval.worker.service import serve

DAILY = "0 9 * * *"
SLOT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a firing of DAILY (TIME_ZONE is UTC in tests)


class StubRuns:
    """runs.child_of / runs.launch stand-ins: a child row, "launched" as running."""

    def __init__(self, refuse=None):
        self.refuse = refuse
        self.launched = []

    def child_of(self, parent):
        return Run.objects.create(
            name=f"{parent.name} (firing)", provider=parent.provider, model=parent.model, parent=parent
        )

    def launch(self, run, *, by=None, confirm_cost_usd=None, firing=False):
        assert firing
        if self.refuse is not None:
            raise self.refuse
        Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
        self.launched.append(run.pk)
        return run


@pytest.fixture
def stub_runs(monkeypatch):
    stub = StubRuns()
    monkeypatch.setattr(runs, "child_of", stub.child_of)
    monkeypatch.setattr(runs, "launch", stub.launch)
    return stub


def scheduled(schedule=DAILY, next_run_at=SLOT, **fields):
    fields.setdefault("name", "weekly echo")
    fields.setdefault("provider", "echo")
    fields.setdefault("model", "echo")
    return Run.objects.create(schedule=schedule, next_run_at=next_run_at, **fields)


def firings_of(parent):
    return Run.objects.filter(parent=parent)


# --- expressions ---------------------------------------------------------------------


def test_it_accepts_a_five_field_expression():
    assert cron.check("  0 9  * * MON ") == "0 9 * * MON"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 9 * * FOO", "Bad day-of-week"),
        ("61 * * * *", "Bad minute"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ("0 9 * *", "five fields"),
        ("* * * * * *", "five fields"),  # cronsim's seconds field: not a schedule
        ("", "five fields"),
    ],
)
def test_it_refuses_a_bad_expression_with_the_reason(expr, reason):
    with pytest.raises(InvalidInput) as refused:
        cron.check(expr)
    assert refused.value.field == "schedule"
    assert reason in refused.value.message


def test_next_firing_is_strictly_after_and_in_time_zone(settings):
    assert cron.next_firing(DAILY, SLOT) == SLOT + timedelta(days=1)
    assert cron.next_firing(DAILY, SLOT - timedelta(seconds=1)) == SLOT
    settings.TIME_ZONE = "Europe/Paris"  # 09:00 in Paris is 08:00 UTC in winter, 07:00 in summer
    assert cron.next_firing(DAILY, datetime(2026, 1, 10, tzinfo=UTC)) == datetime(2026, 1, 10, 8, tzinfo=UTC)
    assert cron.next_firing(DAILY, datetime(2026, 7, 10, tzinfo=UTC)) == datetime(2026, 7, 10, 7, tzinfo=UTC)


def test_next_firing_needs_an_aware_datetime():
    with pytest.raises(ValueError, match="aware"):
        cron.next_firing(DAILY, datetime(2026, 1, 1))


# --- firing --------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_fires_a_due_schedule_once_across_two_daemons(stub_runs):
    parent = scheduled()
    first = schedules.fire_due(now=SLOT)
    second = schedules.fire_due(now=SLOT)  # another daemon, the same instant
    assert [firing.parent_id for firing in first] == [parent.pk] and second == []
    child = firings_of(parent).get()
    assert first[0].child.pk == child.pk and child.status == Run.Status.RUNNING
    parent.refresh_from_db()
    assert parent.next_run_at == SLOT + timedelta(days=1)
    assert parent.status == Run.Status.SCHEDULED and parent.version == 2


@pytest.mark.django_db
def test_a_daemon_holding_a_stale_read_cannot_fire_it_again(stub_runs):
    parent = scheduled()
    seen_by_a, seen_by_b = list(schedules.due(SLOT)), list(schedules.due(SLOT))  # both read it as due
    assert schedules.fire(seen_by_a[0], SLOT) is not None
    assert schedules.fire(seen_by_b[0], SLOT + timedelta(seconds=1)) is None  # zero rows: A took it
    assert firings_of(parent).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_daemons_fire_once_on_postgres(make_task):
    """Four daemons at the same instant, the real launch: each firing once, its jobs once."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: real concurrent transactions (SQLite serialises writers)")
    tasks = [make_task() for _ in range(4)]
    parents = [scheduled(name=f"run {n}", params={"max_tokens": 16}) for n in range(5)]
    barrier = threading.Barrier(4)
    fired, failures = [], []

    def daemon():
        try:
            barrier.wait()
            fired.extend(firing.parent_id for firing in schedules.fire_due(now=SLOT) if firing.child)
        except Exception as error:  # surfaced below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=daemon) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(fired) == sorted(parent.pk for parent in parents)  # each once, whichever daemon
    assert Run.objects.filter(parent__in=parents).count() == 5
    assert LLMJob.objects.count() == 5 * len(tasks)


@pytest.mark.django_db
def test_a_missed_firing_runs_once_after_downtime(stub_runs):
    parent = scheduled(next_run_at=SLOT - timedelta(days=3))  # the daemon was down for three slots
    now = SLOT + timedelta(hours=6)
    assert len(schedules.fire_due(now=now)) == 1
    assert schedules.fire_due(now=now + timedelta(minutes=1)) == []
    parent.refresh_from_db()
    assert parent.next_run_at == SLOT + timedelta(days=1)  # from now, not from the missed slot
    assert firings_of(parent).count() == 1


@pytest.mark.django_db
def test_next_run_at_moves_on_firing_after_firing(stub_runs):
    parent = scheduled(schedule="*/15 * * * *")
    assert schedules.fire_due(now=SLOT - timedelta(seconds=1)) == []  # not due yet
    for minutes in (0, 15, 30):
        assert len(schedules.fire_due(now=SLOT + timedelta(minutes=minutes, seconds=2))) == 1
        parent.refresh_from_db()
        assert parent.next_run_at == SLOT + timedelta(minutes=minutes + 15)
    assert firings_of(parent).count() == 3


@pytest.mark.django_db
def test_only_scheduled_parents_fire(stub_runs):
    cancelled = scheduled(status=Run.Status.CANCELLED)
    parent = scheduled()
    child = scheduled(parent=parent)  # a firing never fires itself
    scheduled(schedule="")  # "run now" only
    assert [firing.parent_id for firing in schedules.fire_due(now=SLOT)] == [parent.pk]
    assert not firings_of(cancelled).exists() and not firings_of(child).exists()


@pytest.mark.django_db
def test_a_schedule_without_next_run_at_is_armed_not_fired(stub_runs):
    parent = scheduled(next_run_at=None)
    assert schedules.fire_due(now=SLOT - timedelta(hours=1)) == []
    parent.refresh_from_db()
    assert parent.next_run_at == SLOT


@pytest.mark.django_db
def test_a_refused_firing_is_recorded_on_the_scheduled_run(monkeypatch, stub_runs, caplog):
    stub_runs.refuse = BudgetExceeded(Decimal("3.50"), left=Decimal("1.00"))
    parent = scheduled()
    with caplog.at_level("WARNING", logger="eval.evaluation.runs.schedules"):
        (firing,) = schedules.fire_due(now=SLOT)
    assert firing.child is None and "daily budget" in firing.refused
    assert not firings_of(parent).exists()  # the refused child is rolled back: no empty run left
    parent.refresh_from_db()
    assert "daily budget" in parent.refused_reason and parent.refused_at == SLOT
    assert parent.next_run_at == SLOT + timedelta(days=1)  # refused, not retried every pass
    assert any(record.levelname == "WARNING" and "refused" in record.getMessage() for record in caplog.records)
    # The next firing that launches clears the refusal.
    stub_runs.refuse = None
    assert schedules.fire_due(now=SLOT + timedelta(days=1))[0].child is not None
    parent.refresh_from_db()
    assert (parent.refused_reason, parent.refused_at) == ("", None)


@pytest.mark.django_db
def test_a_bad_saved_expression_is_refused_once(stub_runs, caplog):
    parent = scheduled(schedule="0 9 * * FOO")  # saved around check() (SQL, an old admin)
    with caplog.at_level("WARNING", logger="eval.evaluation.runs.schedules"):
        (firing,) = schedules.fire_due(now=SLOT)
        assert schedules.fire_due(now=SLOT + timedelta(days=1)) == []
    assert "Bad day-of-week" in firing.refused and not firings_of(parent).exists()
    parent.refresh_from_db()
    assert parent.next_run_at is None and "Bad day-of-week" in parent.refused_reason
    assert sum("FOO" in record.getMessage() for record in caplog.records) == 1


# --- the daemon's step ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_daemon_pass_fires_due_schedules_and_says_so(stub_runs):
    parent = scheduled(next_run_at=SLOT - timedelta(days=400))  # due by the real clock
    result = passes.run_pass(source="")
    assert result.ok and result.fired == 1
    assert "schedules fired=1 refused=0" in result.line()
    assert firings_of(parent).count() == 1


@pytest.mark.django_db
def test_a_failing_firing_is_a_pass_error_and_does_not_fire_every_pass(stub_runs):
    stub_runs.refuse = RuntimeError("provider catalogue exploded")
    parent = scheduled(next_run_at=SLOT - timedelta(days=400))
    result = passes.run_pass(source="")
    assert not result.ok and f"schedules: run {parent.pk}: RuntimeError: provider catalogue exploded" in result.line()
    assert not firings_of(parent).exists()
    again = passes.run_pass(source="")
    assert again.ok and again.fired == 0  # the claim stood: next_run_at moved on


# --- end to end: the real runs.child_of and runs.launch ------------------------------


@pytest.fixture
def echo_schedule(make_task, django_user_model):
    owner = django_user_model.objects.create_user("olga", is_staff=True)
    tasks = [make_task(source="weekly") for _ in range(3)]
    make_task(source="other")  # not selected
    parent = scheduled(created_by=owner, params={"max_tokens": 64}, selection={"source": "weekly"})
    return parent, tasks


@pytest.mark.django_db
def test_a_firing_launches_a_real_child_run_with_its_jobs(echo_schedule):
    parent, tasks = echo_schedule
    (firing,) = schedules.fire_due(now=SLOT)
    child = Run.objects.get(parent=parent)
    assert firing.child.pk == child.pk and child.status == Run.Status.RUNNING
    assert (child.provider, child.model, child.created_by_id) == ("echo", "echo", parent.created_by_id)
    jobs = LLMJob.objects.filter(run=child)
    assert sorted(jobs.values_list("task_id", flat=True)) == sorted(task.pk for task in tasks)
    assert set(jobs.values_list("priority", flat=True)) == {LLMJob.Priority.BULK}
    assert schedules.fire_due(now=SLOT) == []  # once
    assert LLMJob.objects.count() == 3


@pytest.mark.django_db
def test_a_real_firing_over_max_cost_is_refused_and_leaves_no_child(echo_schedule, settings):
    settings.MODEL_PRICES = {"echo": [1_000_000, 1_000_000]}  # a dollar a token
    parent, _ = echo_schedule
    Run.objects.filter(pk=parent.pk).update(max_cost_usd=Decimal("1"))
    (firing,) = schedules.fire_due(now=SLOT)
    assert "max_cost_usd" in firing.refused
    parent.refresh_from_db()
    assert "max_cost_usd" in parent.refused_reason and parent.refused_at == SLOT
    assert not Run.objects.filter(parent=parent).exists() and not LLMJob.objects.exists()


@pytest.mark.django_db
def test_a_real_firing_over_the_budget_is_refused_and_reserves_nothing(echo_schedule, settings):
    settings.MODEL_PRICES = {"echo": [1_000_000, 1_000_000]}
    settings.USER_DAILY_BUDGET_USD = 10  # three tasks at 64 output tokens cost far more
    parent, _ = echo_schedule
    (firing,) = schedules.fire_due(now=SLOT)
    assert "daily budget" in firing.refused
    assert not Run.objects.filter(parent=parent).exists() and not LLMJob.objects.exists()
    assert not DailySpend.objects.filter(reserved_usd__gt=0).exists()


@pytest.mark.django_db(transaction=True)  # the worker reads through its own connections
def test_the_daemon_pass_finishes_runs_whose_jobs_all_ended(staff, make_task, settings):

    settings.ECHO_CHUNK_DELAY_MS = 0
    make_task()
    run = runs.create_run(user=staff, data={"name": "to finish", "provider": "echo", "model": "echo", "tasks": {}})
    asyncio.run(serve(transport="db", once=True))
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING  # nobody looked yet
    result = passes.run_pass(source="")
    assert result.ok, result.errors
    assert Run.objects.get(pk=run.pk).status == Run.Status.DONE
