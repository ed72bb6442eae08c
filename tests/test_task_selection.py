"""Which tasks a selection picks: one rule (eval/evaluation/runs/input.py
``selected_tasks``) for runs, from the API or ``runs create``, and for
``enqueue_llm_jobs``; the callers only choose what to ask."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models.functions import Length
from django.utils import timezone

from eval.evaluation.runs import costs as run_costs
from eval.evaluation.runs import input as run_input
from eval.models import LLMJob, Run, Task

pytestmark = pytest.mark.django_db

ECHO = ("--provider", "echo", "--model", "echo")


@pytest.fixture
def tasks(make_task):
    gone = timezone.now()
    return {
        "a_open": make_task(source="a"),
        "a_done": make_task(source="a", status=Task.Status.DONE),
        "a_open_gone": make_task(source="a", missing_since=gone),
        "b_open": make_task(source="b"),
        "b_done_gone": make_task(source="b", status=Task.Status.DONE, missing_since=gone),
        "a_open_2": make_task(source="a"),
    }


def _names(tasks, picked):
    by_id = {task.pk: name for name, task in tasks.items()}
    return [by_id[task.pk] for task in picked]


@pytest.mark.parametrize(
    ("selection", "options", "expected"),
    [
        ({}, {}, ["a_open", "a_done", "b_open", "a_open_2"]),  # every status, still in the source
        ({"status": "open"}, {}, ["a_open", "b_open", "a_open_2"]),
        ({"status": "open"}, {"include_missing": True}, ["a_open", "a_open_gone", "b_open", "a_open_2"]),
        ({"source": "a", "limit": 2}, {}, ["a_open", "a_done"]),
        ({"ids": "a_open_gone b_done_gone b_open"}, {}, ["a_open_gone", "b_open", "b_done_gone"]),  # gone too
        ({"ids": "a_open_gone b_done_gone b_open", "status": "done"}, {}, ["b_done_gone"]),
    ],
)
def test_the_rule(tasks, selection, options, expected):
    if "ids" in selection:
        selection = {**selection, "ids": [tasks[name].pk for name in selection["ids"].split()]}
    assert _names(tasks, run_input.selected_tasks(selection, **options)) == expected


def test_the_limit_counts_what_is_left_after_skipping_and_the_result_can_be_annotated(tasks):
    first = tasks["a_open"]
    LLMJob.objects.create(task=first, provider="echo", model="echo", status="succeeded", available_at=timezone.now())
    picked = run_input.selected_tasks({"status": "open", "limit": 2}, skip_done_by=("echo", "echo"))
    assert _names(tasks, picked) == ["b_open", "a_open_2"]
    assert _names(tasks, run_input.selected_tasks({"status": "open", "limit": 1}, skip_done_by=("echo", "other"))) == [
        "a_open"
    ]
    assert [t.chars for t in picked.annotate(chars=Length("prompt"))] == [len(t.prompt) for t in picked]


def test_enqueue_llm_jobs_and_a_run_ask_the_same_rule(tasks, monkeypatch):
    asked = []
    real = run_input.selected_tasks

    def recording(selection, **options):
        asked.append(selection)
        return real(selection, **options)

    monkeypatch.setattr(run_input, "selected_tasks", recording)
    out = StringIO()
    call_command("enqueue_llm_jobs", *ECHO, "--source", "a", "--limit", "2", "--yes", stdout=out)
    by_command = set(LLMJob.objects.values_list("task_id", flat=True))
    assert asked[0] == {"source": "a", "limit": 2, "status": "open"}  # the command's default: open tasks
    asked.clear()
    run = Run(provider="echo", model="echo", params={"max_tokens": 5}, selection={"source": "a", "status": "open"})
    run.selection["limit"] = 2
    _, rows, _ = run_costs.estimate(run)
    assert asked == [{"source": "a", "status": "open", "limit": 2}]
    assert {task_id for task_id, _, _ in rows} == by_command == {tasks["a_open"].pk, tasks["a_open_2"].pk}
