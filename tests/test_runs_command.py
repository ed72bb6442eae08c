"""``manage.py runs create|list|show|cancel|launch``: exit codes and real rows."""

import json

import pytest

from eval.models import LLMJob, Run
from tests.test_commands import fails, run

ECHO = ("--provider", "echo", "--model", "echo")

pytestmark = pytest.mark.django_db


def test_it_creates_and_launches_a_run(make_task, staff):
    tasks = [make_task(), make_task(), make_task()]
    out, _ = run(
        "runs",
        "create",
        "--name",
        "nightly",
        *ECHO,
        "--params",
        '{"max_tokens": 5}',
        "--limit",
        "2",
        "--user",
        staff.username,
    )
    created = Run.objects.get()
    assert created.status == Run.Status.RUNNING and created.created_by == staff
    assert set(LLMJob.objects.filter(run=created).values_list("task_id", flat=True)) == {t.pk for t in tasks[:2]}
    assert f"run {created.pk} running: nightly" in out and "2 queued" in out


def test_it_needs_yes_above_the_confirm_threshold(make_task, settings):
    settings.MODEL_PRICES = {"echo": [1, 2]}
    settings.BULK_CONFIRM_COST_USD = 0.001
    make_task(prompt="p" * 40)
    error = fails("runs", "create", "--name", "x", *ECHO)
    assert error.returncode == 1 and "--yes" in str(error) and "0.002058" in str(error)
    assert not Run.objects.exists()
    run("runs", "create", "--name", "x", *ECHO, "--yes")
    assert float(Run.objects.get().estimated_cost_usd) == 0.002058


def test_usage_errors_exit_2(make_task):
    for args in [(*ECHO, "--params", "{no"), ("--provider", "echo", "--model", "nope"), (*ECHO, "--schedule", "x")]:
        error = fails("runs", "create", "--name", "x", *args)
        assert error.returncode == 2, args
    assert not Run.objects.exists()


def test_show_list_cancel_and_launch(make_task):
    make_task()
    run("runs", "create", "--name", "weekly", *ECHO, "--schedule", "0 6 * * 1")
    scheduled = Run.objects.get()
    out, _ = run("runs", "launch", str(scheduled.pk))
    child = Run.objects.exclude(pk=scheduled.pk).get()
    assert child.parent == scheduled and f"run {child.pk} running" in out
    out, _ = run("runs", "show", str(child.pk), "--json")
    assert json.loads(out)["counts"]["queued"] == 1
    out, _ = run("runs", "list")
    assert "weekly" in out and str(child.pk) in out
    run("runs", "cancel", str(child.pk))
    assert Run.objects.get(pk=child.pk).status == Run.Status.CANCELLED
    assert set(LLMJob.objects.values_list("status", flat=True)) == {"cancelled"}
    assert fails("runs", "cancel", str(child.pk)).returncode == 1
    assert fails("runs", "show", "999").returncode == 1
