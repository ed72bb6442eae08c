"""A read never changes a run's status (eval/evaluation/runs/status.py): the
API's GETs, the runs pages and the ``runs`` command show a run whose jobs have
all ended as done, and store nothing; only the daemon's pass stores it."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eval.evaluation.runs import services as runs
from eval.evaluation.runs import status as run_status
from eval.models import LLMJob, ModelSeen, Run
from tests.helpers import login
from tests.run_fixtures import make_run, settle

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"^\s*(UPDATE|INSERT|DELETE)\b", re.IGNORECASE)
# What a read may write: the record that a user saw outputs with their models (DESIGN "blind").
ALLOWED_WRITES = {ModelSeen._meta.db_table}


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def ended_runs(staff, make_task):
    """Stored as running, nothing live: a generate run, and a judge run over it
    (judged runs ended too). Plus a run with a job still queued."""
    task = make_task()
    generated = make_run(staff, name="generated", status=Run.Status.RUNNING)
    settle(generated, task, "out")
    judge = make_run(staff, name="judge", status=Run.Status.RUNNING, kind=Run.Kind.JUDGE, score_of=generated)
    settle(judge, task, '{"score": 3}')
    busy = make_run(staff, name="busy", status=Run.Status.RUNNING)
    settle(busy, make_task(), status="queued")
    return {"generated": generated, "judge": judge, "busy": busy}


def _writes(queries):
    written = []
    for query in queries:
        if WRITE.match(query["sql"]) and not any(table in query["sql"] for table in ALLOWED_WRITES):
            written.append(query["sql"])
    return written


def _read_everything(client, runs_by_name):
    answers = {"list": client.get("/api/runs").json()}
    for name, run in runs_by_name.items():
        answers[name] = client.get(f"/api/runs/{run.pk}").json()
        assert client.get(f"/api/runs/{run.pk}/jobs").status_code == 200
        page = client.get(f"/runs/{run.pk}/")
        assert page.status_code == 200
        answers[f"{name} page"] = re.search(r'data-run-status="(\w+)"', page.content.decode()).group(1)
    assert client.get("/runs/").status_code == 200
    return answers


def test_gets_show_an_ended_run_done_and_write_nothing_to_runs(staff, ended_runs):
    client = login(staff)
    with CaptureQueriesContext(connection) as queries:
        answers = _read_everything(client, ended_runs)
    assert _writes(queries.captured_queries) == []
    shown = {run["name"]: run["status"] for run in answers["list"]["runs"]}
    assert shown == {"generated": "done", "judge": "done", "busy": "running"}
    for name, expected in shown.items():
        assert answers[name]["status"] == answers[f"{name} page"] == expected
    stored = set(Run.objects.values_list("status", flat=True))
    assert stored == {Run.Status.RUNNING}  # nothing stored by any read


def test_a_judge_run_reads_running_while_a_judged_run_has_live_jobs(staff, ended_runs, make_task):
    generated, judge = ended_runs["generated"], ended_runs["judge"]
    settle(generated, make_task(), status="running")
    assert run_status.shown(judge) == Run.Status.RUNNING
    assert login(staff).get(f"/api/runs/{judge.pk}").json()["status"] == "running"


def test_the_daemons_pass_stores_what_reads_showed_and_the_tag_moves(staff, ended_runs):
    client = login(staff)
    generated = ended_runs["generated"]
    before = client.get(f"/api/runs/{generated.pk}")
    assert before.json()["status"] == "done" and before.json()["finished_at"] is None
    assert runs.finish_ended() == 2  # the generated run and its judge run
    after = client.get(f"/api/runs/{generated.pk}", HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200 and after.json()["status"] == "done" and after.json()["finished_at"]
    assert Run.objects.get(pk=ended_runs["busy"].pk).status == Run.Status.RUNNING


def test_the_runs_command_reads_without_writing(ended_runs):
    out = StringIO()
    generated = ended_runs["generated"]
    with CaptureQueriesContext(connection) as queries:
        call_command("runs", "list", stdout=out)
        call_command("runs", "show", str(generated.pk), stdout=out)
    assert _writes(queries.captured_queries) == []
    assert f"run {generated.pk} done" in out.getvalue()
    assert LLMJob.objects.filter(run=generated).count() == 1
    assert Run.objects.get(pk=generated.pk).status == Run.Status.RUNNING
