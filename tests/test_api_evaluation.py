"""The evaluation API: judgements (validation, supersede, withdraw, stale after
a source change), drafts, hiding jobs, the review filters, and blind pairs
whose answers and tokens give nothing away."""

import base64
import binascii
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from eval.jobs import claims, create, endings
from eval.models import Judgement, PairAssignment, Task
from eval.sync import sync_tasks
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def finished(task, model="echo", output=None, provider="echo", user=None):
    job, _ = create.create_job(task=task, provider=provider, model=model, created_by=user)
    attempt = claims.claim(job.pk, "w1").job.attempt
    endings.succeed_one(job.pk, "w1", attempt, output=output or f"{model} says hi", stop_reason="end_turn")
    return job


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def error_of(response):
    return response.status_code, response.json()["error"]["code"], response.json()["error"].get("field")


# --- judgements ------------------------------------------------------------------------


def test_score_validation_names_the_field(reviewer, task):
    job = finished(task)
    queued, _ = create.create_job(task=task, provider="echo", model="echo")
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/judgements"
    cases = [
        ({"kind": "score", "jobs": [str(job.pk)], "answers": {}}, "answers.quality"),
        ({"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 9}}, "answers.quality"),
        ({"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": "4"}}, "answers.quality"),
        ({"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 4, "vibe": 1}}, "answers.vibe"),
        ({"kind": "score", "jobs": [str(queued.pk)], "answers": {"quality": 4}}, "jobs"),
        ({"kind": "score", "jobs": ["nope"], "answers": {"quality": 4}}, "jobs"),
        ({"kind": "pairwise", "jobs": [str(job.pk)], "verdict": "a"}, "jobs"),
        ({"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 4}, "extra": 1}, "extra"),
        ({"kind": "ranking", "jobs": [str(job.pk)]}, "kind"),
    ]
    for body, field in cases:
        assert error_of(post(client, url, body)) == (400, "invalid", field), body
    assert not Judgement.objects.exists()


def test_supersede_then_withdraw_within_the_window(reviewer, task, settings):
    job = finished(task)
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/judgements"
    first = post(client, url, {"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 2}})
    assert first.status_code == 201 and first.json()["answers"] == {"quality": 2}
    second = post(client, url, {"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 5}, "notes": "better"})
    assert second.json()["supersedes"] == first.json()["id"]
    listed = client.get(url).json()["judgements"]
    assert [j["id"] for j in listed] == [second.json()["id"]]

    withdrawn = client.delete(f"/api/judgements/{second.json()['id']}")
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] is True
    assert [j["id"] for j in client.get(url).json()["judgements"]] == [first.json()["id"]]
    assert error_of(client.delete(f"/api/judgements/{second.json()['id']}"))[:2] == (409, "conflict")
    Judgement.objects.filter(pk=first.json()["id"]).update(created_at=timezone.now() - timedelta(hours=1))
    assert error_of(client.delete(f"/api/judgements/{first.json()['id']}"))[:2] == (409, "conflict")


def test_only_the_author_withdraws_and_outsiders_see_nothing(reviewer, staff, outsider, task):
    job = finished(task)
    mine = post(
        login(reviewer),
        f"/api/tasks/{task.id}/judgements",
        {"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 3}},
    )
    assert error_of(login(staff).delete(f"/api/judgements/{mine.json()['id']}"))[:2] == (403, "forbidden")
    assert error_of(login(outsider).delete(f"/api/judgements/{mine.json()['id']}"))[:2] == (404, "not_found")
    assert login(outsider).get(f"/api/tasks/{task.id}/judgements").status_code == 404
    assert login(staff).get(f"/api/tasks/{task.id}/judgements").json()["judgements"] == []
    everyone = login(staff).get(f"/api/tasks/{task.id}/judgements?all=1").json()["judgements"]
    assert [j["reviewer"] for j in everyone] == ["alice"]
    assert login(reviewer).get(f"/api/tasks/{task.id}/judgements?all=1").status_code == 403


def test_stale_after_a_source_change_not_after_a_title_change(tmp_path, settings, reviewer):
    source = tmp_path / "set.jsonl"

    def sync(**record):
        source.write_text(json.dumps({"id": "t1", "prompt": "What is 2+2?", "reference": "4", **record}) + "\n")
        sync_tasks(str(source))

    sync(title="Sums")

    task = Task.objects.get(external_id="t1")
    job = finished(task)
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/judgements"
    post(client, url, {"kind": "score", "jobs": [str(job.pk)], "answers": {"quality": 4}})

    def stale():
        return [j["stale"] for j in client.get(url).json()["judgements"]]

    sync(title="Arithmetic", metadata={"level": 1})
    assert stale() == [False]
    assert client.get("/api/tasks?review=stale").json()["count"] == 0
    sync(title="Arithmetic", reference="four")
    assert stale() == [True]
    assert [t["id"] for t in client.get("/api/tasks?review=stale").json()["tasks"]] == [task.id]
    poll = client.get(f"/api/tasks/{task.id}/jobs").json()["jobs"]
    assert poll[0]["from_current_prompt"] is False
    sync(title="Arithmetic")  # the reference back as it was
    assert stale() == [False]


def test_review_filters_on_the_task_list(reviewer, make_task):
    reviewed, waiting = make_task(), make_task()
    client = login(reviewer)
    assert (
        client.put(
            f"/api/tasks/{reviewed.id}/review", json.dumps({"rating": 3}), content_type="application/json"
        ).status_code
        == 200
    )
    ids = lambda review: [t["id"] for t in client.get(f"/api/tasks?review={review}").json()["tasks"]]  # noqa: E731
    assert ids("mine") == [reviewed.id] and ids("needed") == [waiting.id]
    assert error_of(client.get("/api/tasks?review=later"))[:2] == (400, "invalid")
    listed = {t["id"]: t["reviewed_by_me"] for t in client.get("/api/tasks").json()["tasks"]}
    assert listed == {reviewed.id: True, waiting.id: False}


# --- drafts and hiding -------------------------------------------------------------------


def test_drafts_round_trip_and_are_bounded(reviewer, task):
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/draft"
    assert client.get(url).json() == {"task": task.id, "data": None, "updated_at": None}
    saved = client.put(
        url, json.dumps({"rating": 4, "notes": "so far", "scores": {"abc": 3}}), content_type="application/json"
    )
    assert saved.status_code == 200 and saved.json()["data"]["scores"] == {"abc": 3}
    assert client.get(url).json()["data"]["notes"] == "so far"
    too_big = client.put(url, json.dumps({"notes": "x" * 600_000}), content_type="application/json")
    assert error_of(too_big)[:2] == (400, "invalid")
    assert client.delete(url).status_code == 204
    assert client.get(url).json()["data"] is None


def test_hide_and_unhide_by_creator_or_staff(reviewer, staff, django_user_model, task):
    job = finished(task, user=reviewer)
    other = django_user_model.objects.create_user("bob", password="pw-bob-123")
    other.groups.add(*reviewer.groups.all())
    client = login(reviewer)
    etag = client.get(f"/api/tasks/{task.id}/jobs")["ETag"]
    hidden = client.post(f"/api/jobs/{job.pk}/hide")
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True
    assert client.get(f"/api/tasks/{task.id}/jobs", HTTP_IF_NONE_MATCH=etag).status_code == 200  # the poll sees it
    assert error_of(login(other).post(f"/api/jobs/{job.pk}/unhide"))[:2] == (403, "forbidden")
    assert login(staff).post(f"/api/jobs/{job.pk}/unhide").json()["hidden"] is False


# --- blind pairs -----------------------------------------------------------------------------


@pytest.fixture
def compared(make_task, settings):
    """Two tasks with outputs of three models (two providers): three pairs each."""
    settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_MODELS = "sk-test", ["claude-sonnet-test"]
    tasks = []
    for n in range(2):
        task = make_task(prompt=f"Explain topic {n} briefly.")
        finished(task, "echo", output=f"Answer one about {n}.")
        finished(task, "echo-brief", output=f"Short answer {n}.")
        finished(task, "claude-sonnet-test", provider="anthropic", output=f"A third answer on {n}.")
        tasks.append(task)
    return tasks


def secrets_of(tasks):
    """What a blind answer must never contain: ids of the tasks and their jobs, models, providers."""
    words = set()
    for task in tasks:
        for job in task.jobs.all():
            words |= {str(job.pk), job.pk.hex, job.model, job.provider}
    return words


def token_decodings(token):
    """The token as text and every base64 reading of it and of its segments."""
    readings = [token]
    for part in [token, *re.split(r"[^A-Za-z0-9]", token)]:
        for pad in range(3):
            try:
                readings.append(base64.urlsafe_b64decode(part + "=" * pad).decode("latin-1"))
            except (binascii.Error, ValueError):
                continue
    return readings


def test_pairs_serve_three_models_blind_until_the_target(compared, reviewer, staff, settings):
    client = login(reviewer)
    hidden = secrets_of(compared)
    seen_pairs = set()
    for _ in range(2):  # 3 pairs per task, but a verdict reveals two of its three models: one blind pair each
        response = client.get("/api/pairs/next")
        assert response.status_code == 200
        text = response.content.decode()
        body = response.json()
        assert set(body) == {"pair", "task", "left", "right", "rubric", "remaining"}
        assert set(body["task"]) == {"title", "prompt", "reference", "messages"}
        for word in hidden:
            assert word not in text, word
            for reading in token_decodings(body["pair"]):
                assert word not in reading, word
        assert body["left"]["output"] != body["right"]["output"]
        verdict = post(client, f"/api/pairs/{body['pair']}/verdict", {"verdict": "left"})
        assert verdict.status_code == 201
        revealed = verdict.json()["revealed"]
        assert {revealed["left"]["model"], revealed["right"]["model"]} < {"echo", "echo-brief", "claude-sonnet-test"}
        seen_pairs.add(frozenset(verdict.json()["jobs"]))
    assert len(seen_pairs) == 2
    assert client.get("/api/pairs/next").status_code == 204  # never twice, never a revealed model
    settings.PAIR_TARGET_JUDGEMENTS = 1
    for user in (staff, type(staff).objects.create_user("carol", is_staff=True)):  # the four others
        other = login(user)
        for _ in range(2):
            pair = other.get("/api/pairs/next").json()["pair"]
            assert post(other, f"/api/pairs/{pair}/verdict", {"verdict": "tie"}).json()["blind"] is True
    late = login(type(staff).objects.create_user("dave", is_staff=True))
    assert late.get("/api/pairs/next").status_code == 204  # each pair has its one verdict


def test_verdict_is_blind_only_if_the_caller_had_not_seen_the_jobs(compared, reviewer):
    client = login(reviewer)
    first = client.get("/api/pairs/next").json()
    assert post(client, f"/api/pairs/{first['pair']}/verdict", {"verdict": "tie"}).json()["blind"] is True
    second = client.get("/api/pairs/next").json()
    task = next(t for t in compared if t.prompt == second["task"]["prompt"])
    client.get(f"/api/tasks/{task.id}/jobs")  # the jobs API shows models: no longer blind for this task
    answer = post(client, f"/api/pairs/{second['pair']}/verdict", {"verdict": "right"}).json()
    assert answer["blind"] is False
    assignment = PairAssignment.objects.get(token=second["pair"])
    expected = "b" if assignment.shown_left_id == assignment.job_a_id else "a"
    assert answer["verdict"] == expected  # "right" is the job not shown on the left


def test_tokens_are_single_use_bound_and_expire(compared, reviewer, staff):
    client = login(reviewer)
    pair = client.get("/api/pairs/next").json()["pair"]
    url = f"/api/pairs/{pair}/verdict"
    assert error_of(post(login(staff), url, {"verdict": "left"}))[:2] == (404, "not_found")  # foreign
    tampered = pair[:-2] + ("aa" if not pair.endswith("aa") else "bb")
    assert error_of(post(client, f"/api/pairs/{tampered}/verdict", {"verdict": "left"}))[:2] == (404, "not_found")
    assert error_of(post(client, url, {"verdict": "up"}))[:2] == (400, "invalid")
    assert post(client, url, {"verdict": "both_bad"}).status_code == 201
    assert error_of(post(client, url, {"verdict": "left"}))[:2] == (409, "conflict")
    later = client.get("/api/pairs/next").json()["pair"]
    PairAssignment.objects.filter(token=later).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert error_of(post(client, f"/api/pairs/{later}/verdict", {"verdict": "left"}))[:2] == (410, "expired")


def test_skip_sends_a_pair_last_and_undo_does_not_free_it(compared, reviewer):
    client = login(reviewer)
    first = client.get("/api/pairs/next").json()
    assert client.post(f"/api/pairs/{first['pair']}/skip").status_code == 204
    second = client.get("/api/pairs/next").json()
    assert second["pair"] != first["pair"] and second["remaining"] == 6
    judged = post(client, f"/api/pairs/{second['pair']}/verdict", {"verdict": "left"}).json()
    after = client.get("/api/pairs/next").json()["remaining"]
    assert after == 3  # that task's three pairs are gone: two models of each were revealed
    assert client.delete(f"/api/judgements/{judged['id']}").status_code == 200
    assert client.get("/api/pairs/next").json()["remaining"] == after  # undone, but the models stay revealed


def test_pairs_need_a_reviewer_and_runs_are_not_there_yet(compared, outsider, reviewer):
    assert error_of(login(outsider).get("/api/pairs/next"))[:2] == (404, "not_found")
    assert error_of(login(reviewer).get("/api/pairs/next?runs=1,2"))[:2] == (400, "invalid")
