"""Outputs produced elsewhere: a record's ``outputs`` become runs of kind
``imported`` whose jobs are reviewed, paired blind, judged, compared and
counted in results like any run's; the same text again changes nothing; a
changed text makes a new job and the old one keeps its judgements."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from eval.models import Judgement, LLMJob, Run
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain(plain_http):
    """Plain HTTP test clients."""


def upload(client, records, name="app", **fields):
    content = "".join(json.dumps(r) + "\n" for r in records).encode()
    data = {"file": SimpleUploadedFile("outputs.jsonl", content), **fields}
    return client.post(f"/api/datasets/{name}/imports", data)


def record(i, v1="short", v2="a much longer answer"):
    return {
        "id": f"t{i}",
        "prompt": f"Question {i}?",
        "outputs": [{"label": "app-v1", "text": f"{v1} {i}"}, {"label": "app-v2", "text": f"{v2} {i}"}],
    }


@pytest.fixture
def manager(staff):
    return login(staff)


def test_each_label_becomes_an_imported_run_of_succeeded_jobs(manager, staff):
    body = upload(manager, [record(1), record(2)]).json()
    assert (body["added"], body["outputs"], body["version"]) == (2, 4, 1)
    runs = {run.model: run for run in Run.objects.filter(kind="imported")}
    assert set(runs) == {"app-v1", "app-v2"}
    v1 = runs["app-v1"]
    assert (v1.provider, v1.status, v1.selection, v1.created_by, v1.dataset_version.number) == (
        "imported",
        "done",
        {"source": "app"},
        staff,
        1,
    )
    jobs = LLMJob.objects.filter(run=v1).order_by("task__external_id")
    assert [(j.status, j.provider, j.model, j.output) for j in jobs] == [
        ("succeeded", "imported", "app-v1", "short 1"),
        ("succeeded", "imported", "app-v1", "short 2"),
    ]
    assert all(j.prompt_hash == j.task.prompt_hash and j.output_hash for j in jobs)
    run_json = manager.get(f"/api/runs/{v1.pk}").json()
    assert run_json["kind"] == "imported" and run_json["counts"]["succeeded"] == 2 and run_json["progress"] == 100


def test_imported_outputs_have_no_cost_or_tokens_anywhere_not_zero(manager):
    """Outputs produced elsewhere carry no usage: their run, its comparison and the
    command say unknown, never $0 or 0 tokens."""
    upload(manager, [record(1), record(2)])
    v1, v2 = Run.objects.filter(kind="imported").order_by("model")
    run_json = manager.get(f"/api/runs/{v1.pk}").json()
    assert (run_json["cost_usd"], run_json["estimated_cost_usd"]) == (None, None)
    summary = manager.get(f"/api/runs/compare?a={v1.pk}&b={v2.pk}").json()["summary"]
    assert summary["cost_usd"] == {"a": None, "b": None}
    assert summary["tokens"]["a"] == {"input": None, "output": None}
    out = io.StringIO()
    call_command("runs", "compare", str(v1.pk), str(v2.pk), stdout=out)
    assert "cost: A -, B -; tokens in/out: A -/-, B -/-" in out.getvalue()
    out = io.StringIO()
    call_command("runs", "list", stdout=out)
    assert "estimated -, cost so far -" in out.getvalue() and "$0" not in out.getvalue()


def test_the_same_text_again_changes_nothing_and_a_changed_one_makes_a_new_job(manager, reviewer):
    upload(manager, [record(1), record(2)])
    again = upload(manager, [record(1), record(2)]).json()
    assert (again["outputs"], again["version"]) == (0, None)
    assert LLMJob.objects.count() == 4

    old = LLMJob.objects.get(model="app-v1", task__external_id="t1")
    judge = login(reviewer).post(
        f"/api/tasks/{old.task_id}/judgements",
        {"kind": "score", "jobs": [str(old.pk)], "answers": {"quality": 2}},
        content_type="application/json",
    )
    assert judge.status_code == 201, judge.content
    changed = upload(manager, [record(1, v1="better"), record(2)]).json()
    assert (changed["outputs"], changed["changed"], changed["version"]) == (1, 0, 2)
    new = LLMJob.objects.filter(model="app-v1", task__external_id="t1").latest("created_at")
    assert new.pk != old.pk and new.output == "better 1"
    assert Judgement.objects.get().job_a_id == old.pk  # the judgement stays on the output it judged
    assert LLMJob.objects.filter(pk=old.pk, output="short 1").exists()


def test_bad_outputs_are_bad_lines(manager):
    bad = [
        {"id": "a", "prompt": "p", "outputs": "text"},
        {"id": "b", "prompt": "p", "outputs": [{"label": "x"}]},
        {"id": "c", "prompt": "p", "outputs": [{"label": "x", "text": "1"}, {"label": "x", "text": "2"}]},
        {"id": "d", "prompt": "p", "outputs": [{"label": " ", "text": "1"}]},
    ]
    error = upload(manager, bad).json()["error"]
    assert [e["line"] for e in error["errors"]] == [1, 2, 3, 4]
    assert "comes twice" in error["errors"][2]["message"]
    assert not Run.objects.exists() and not LLMJob.objects.exists()


def test_imported_outputs_are_paired_blind_compared_and_judged(manager, reviewer, staff, settings):
    upload(manager, [record(1), record(2)])
    v1, v2 = (Run.objects.get(model=label) for label in ("app-v1", "app-v2"))
    client = login(reviewer)
    pair = client.get("/api/pairs/next?source=app").json()
    assert {pair["left"]["output"], pair["right"]["output"]} in (
        {"short 1", "a much longer answer 1"},
        {"short 2", "a much longer answer 2"},
    )
    verdict = client.post(f"/api/pairs/{pair['pair']}/verdict", {"verdict": "tie"}, content_type="application/json")
    assert verdict.status_code == 201

    judge = manager.post(
        "/api/runs",
        {
            "name": "judge imported",
            "kind": "judge",
            "provider": "echo",
            "model": "echo-judge",
            "judge": {"compare": [v1.pk, v2.pk]},
        },
        content_type="application/json",
    )
    assert judge.status_code == 201, judge.content
    assert LLMJob.objects.filter(run_id=judge.json()["id"], kind="judge").count() == 2

    results = manager.get(f"/api/results?runs={v1.pk},{v2.pk}")
    assert results.status_code == 200, results.content
    figures = results.json()
    assert [(row["provider"], row["model"], row["run"]["kind"]) for row in figures["rows"]] == [
        ("imported", "app-v1", "imported"),
        ("imported", "app-v2", "imported"),
    ]
    assert figures["judgements"] == 1  # the blind tie between the two imported outputs

    refused = manager.post(
        "/api/runs",
        {"name": "x", "kind": "imported", "provider": "echo", "model": "echo", "tasks": {}},
        content_type="application/json",
    )
    assert refused.status_code == 400


def test_the_results_page_offers_imported_runs_to_compare(manager):
    upload(manager, [record(1)])
    v1, v2 = (Run.objects.get(model=label) for label in ("app-v1", "app-v2"))
    html = manager.get("/results/").content.decode()
    assert f'name="runs" value="{v1.pk}"' in html and f'name="runs" value="{v2.pk}"' in html
    assert "(imported/app-v1, done)" in html
