"""Blind is a fact about the reviewer, not a flag of the request (issue 18, item 1).

A reviewer who has been shown an output together with its model (the review
page, the poll, job JSON, the reveal after a pair's verdict) is never served
that output blind again, and any verdict of theirs on it is stored
``blind: false``; withdrawing a verdict does not make its pair blind again;
a pair token takes one verdict, on its pair, and dies on skip. Through the
HTTP API, as a browser or a script would go; the last test walks random
sequences of next / verdict / undo / skip / page views (hypothesis)."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from eval.evaluation.reviews import pairs, seen
from eval.jobs import claims, create, endings
from eval.models import Judgement, ModelSeen, PairAssignment
from tests.helpers import login

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"^\s*(UPDATE|INSERT|DELETE)\b", re.IGNORECASE)
MODELS = [("echo", "echo"), ("echo", "echo-brief"), ("anthropic", "claude-a"), ("anthropic", "claude-b")]


@pytest.fixture(autouse=True)
def _setup(plain_http, settings):
    """Plain HTTP clients (tests/conftest.py) and four models over two providers."""
    settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_MODELS = "sk-test", ["claude-a", "claude-b"]


def finished(task, provider, model, output):
    job, _ = create.create_job(task=task, provider=provider, model=model)
    attempt = claims.claim(job.pk, "w1").job.attempt
    assert endings.succeed_one(job.pk, "w1", attempt, output=output, stop_reason="end_turn")
    job.refresh_from_db()
    return job


def make_world(make_task, tasks=2, models=3):
    """``tasks`` tasks, each with one output of each of the first ``models`` models."""
    world = []
    for n in range(tasks):
        task = make_task(prompt=f"Explain topic {n} briefly.")
        world.append((task, [finished(task, p, m, f"{m} on topic {n}.") for p, m in MODELS[:models]]))
    return world


def post(client, url, body=None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def next_pair(client):
    """(the answer's JSON, the served assignment) or (None, None) on 204."""
    response = client.get("/api/pairs/next")
    if response.status_code == 204:
        return None, None
    assert response.status_code == 200, response.content
    body = response.json()
    return body, PairAssignment.objects.get(token=body["pair"])


def outputs_of(assignment):
    return {assignment.job_a_id, assignment.job_b_id}


def verdict(client, token, side="left"):
    return post(client, f"/api/pairs/{token}/verdict", {"verdict": side})


# --- (a) reveal, withdraw, next -------------------------------------------------------------------


def test_a_withdrawn_verdict_does_not_serve_its_pair_again(make_task, reviewer):
    (task, jobs), *_ = make_world(make_task, tasks=1, models=2)  # one pair in all
    client = login(reviewer)
    body, assignment = next_pair(client)
    answer = verdict(client, body["pair"]).json()
    assert answer["blind"] is True and set(answer["revealed"]) == {"left", "right"}
    assert client.delete(f"/api/judgements/{answer['id']}").status_code == 200
    again, _ = next_pair(client)
    assert again is None  # the models were revealed: the pair is not blind for this reviewer any more
    assert verdict(client, body["pair"]).status_code == 409  # nor does its old token take a second verdict
    assert list(Judgement.objects.values_list("blind", flat=True)) == [True]


def test_a_withdrawn_verdict_leaves_only_other_outputs(make_task, reviewer):
    world = make_world(make_task, tasks=2, models=2)
    client = login(reviewer)
    body, first = next_pair(client)
    answer = verdict(client, body["pair"]).json()
    client.delete(f"/api/judgements/{answer['id']}")
    body, second = next_pair(client)
    assert outputs_of(second).isdisjoint(outputs_of(first)) and second.task_id != first.task_id
    assert next_pair(client)[0]["pair"] == body["pair"]  # the pending one
    assert len(world) == 2


# --- (b) a reveal on one pair identifies outputs in the task's other pairs ------------------------


def test_a_reveal_identifies_the_outputs_in_the_tasks_other_pairs(make_task, reviewer):
    make_world(make_task, tasks=3, models=3)
    client = login(reviewer)
    revealed, stored = set(), []
    while True:
        body, assignment = next_pair(client)
        if body is None:
            break
        assert outputs_of(assignment).isdisjoint(revealed), "served an output whose model was revealed"
        answer = verdict(client, body["pair"], "right").json()
        revealed |= outputs_of(assignment)
        stored.append(answer["blind"])
    assert stored == [True, True, True]  # one blind pair per task of three models


def test_a_verdict_on_an_old_token_after_a_reveal_is_not_blind(make_task, reviewer):
    """Two tokens for the same task held at once (say, served before this rule, or in
    two tabs under two source filters): the second verdict comes after the first one's
    reveal named one of its outputs."""
    (task, (echo, brief, claude)), *_ = make_world(make_task, tasks=1, models=3)
    first = pairs._assign(reviewer, pairs.Pair.of(task.pk, echo.pk, brief.pk))
    second = pairs._assign(reviewer, pairs.Pair.of(task.pk, echo.pk, claude.pk))
    client = login(reviewer)
    assert verdict(client, first.token).json()["blind"] is True
    answer = verdict(client, second.token).json()
    assert answer["blind"] is False  # echo's model was revealed by the first verdict


def test_a_page_view_after_the_pair_was_served_ends_the_blindness(make_task, reviewer):
    world = make_world(make_task, tasks=3, models=2)
    client = login(reviewer)
    views = [
        lambda task, jobs: client.get(f"/tasks/{task.pk}/"),
        lambda task, jobs: client.get(f"/api/tasks/{task.pk}/jobs"),
        lambda task, jobs: client.get(f"/api/jobs/{jobs[0].pk}"),
    ]
    by_task = {task.pk: (task, jobs) for task, jobs in world}
    for view in views:
        body, assignment = next_pair(client)
        assert view(*by_task[assignment.task_id]).status_code == 200
        assert verdict(client, body["pair"]).json()["blind"] is False


def test_job_json_and_the_review_page_take_outputs_out_of_the_blind_pairs(make_task, reviewer):
    world = make_world(make_task, tasks=3, models=2)
    client = login(reviewer)
    (t0, jobs0), (t1, jobs1), (t2, jobs2) = world
    assert client.get(f"/api/jobs?ids={jobs0[1].pk}").status_code == 200
    assert client.get(f"/tasks/{t1.pk}/").status_code == 200
    body, assignment = next_pair(client)
    assert assignment.task_id == t2.pk
    verdict(client, body["pair"])
    assert next_pair(client) == (None, None)


def test_the_same_text_from_a_newer_job_of_the_model_is_known(make_task, reviewer):
    """A deterministic model run again gives the same text: seen once with its model, known."""
    (task, (echo, brief)), *_ = make_world(make_task, tasks=1, models=2)
    client = login(reviewer)
    client.get(f"/api/jobs/{echo.pk}")
    again = finished(task, "echo", "echo", echo.output)  # now the latest echo job: the pair's
    assert pairs.candidate_pairs() == [pairs.Pair.of(task.pk, again.pk, brief.pk)]
    assert next_pair(client) == (None, None)


def test_the_pairs_export_and_the_admin_job_page_take_outputs_out_of_the_blind_pairs(make_task, reviewer, staff):
    """Staff see outputs with their models in the ``pairs`` export and on a job's admin page."""
    world = make_world(make_task, tasks=3, models=2)
    judged = login(reviewer)
    body, assignment = next_pair(judged)
    verdict(judged, body["pair"], "left")  # a verdict that picks a side: its pair is in the export
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client = login(staff)
    download = client.get("/api/exports/pairs.jsonl")
    assert download.status_code == 200 and b"".join(download.streaming_content)
    _, jobs = next((task, jobs) for task, jobs in world if task.pk != assignment.task_id)
    assert client.get(f"/admin/eval/llmjob/{jobs[0].pk}/change/").status_code == 200
    served = []
    while (pair := next_pair(client))[0] is not None:
        served.append(outputs_of(pair[1]))
        verdict(client, pair[0]["pair"], "tie")
    assert len(served) == 1  # the third task's pair only: the others hold an output staff have seen
    assert served[0].isdisjoint(outputs_of(assignment) | {jobs[0].pk})


def test_outputs_uploaded_with_their_labels_are_not_blind_for_their_uploader(reviewer, staff):
    """A dataset's ``outputs`` come with their labels (the models of imported runs): the
    uploader had both, so those pairs are never blind for them; for others they are."""
    records = [
        {
            "id": f"t{i}",
            "prompt": f"Question {i}?",
            "outputs": [{"label": "v1", "text": f"short {i}"}, {"label": "v2", "text": f"long answer {i}"}],
        }
        for i in range(2)
    ]
    content = "".join(json.dumps(r) + "\n" for r in records).encode()
    uploader = login(staff)
    answer = uploader.post("/api/datasets/app/imports", {"file": SimpleUploadedFile("outputs.jsonl", content)})
    assert answer.status_code in (200, 201), answer.content
    assert next_pair(uploader) == (None, None)
    pair = pairs.candidate_pairs("app")[0]
    token = pairs._assign(staff, pair).token  # however a token came to them
    assert verdict(uploader, token).json()["blind"] is False
    body, _ = next_pair(login(reviewer))
    assert verdict(login(reviewer), body["pair"]).json()["blind"] is True


# --- (c) a token takes one verdict, and none after a skip ----------------------------------------


def test_a_skipped_token_takes_no_verdict_and_no_second_skip(make_task, reviewer):
    make_world(make_task, tasks=2, models=2)
    client = login(reviewer)
    body, _ = next_pair(client)
    assert client.post(f"/api/pairs/{body['pair']}/skip").status_code == 204
    refused = verdict(client, body["pair"])
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "expired"
    assert client.post(f"/api/pairs/{body['pair']}/skip").status_code == 410
    assert not Judgement.objects.exists()
    later, _ = next_pair(client)
    assert later["pair"] != body["pair"]


# --- any sequence ---------------------------------------------------------------------------------

USERS = 2
_user, _pick = st.integers(0, USERS - 1), st.sampled_from([0, 0, 0, 0, 1, 2, 3])  # 0: the latest token or verdict
_NEXT = st.tuples(st.just("next"), _user)
_VERDICT = st.tuples(st.just("verdict"), _user, _pick, st.sampled_from(sorted(pairs.SIDES)))
_UNDO = st.tuples(st.just("undo"), _user, _pick)
# Weighted towards the paths that matter: next, verdict and undo come often.
ACTIONS = st.one_of(
    _NEXT,
    _VERDICT,
    _NEXT,
    _VERDICT,
    _UNDO,
    st.tuples(st.just("skip"), _user, _pick),
    st.tuples(st.sampled_from(["review_page", "poll"]), _user, st.integers(0, 2)),
    st.tuples(st.sampled_from(["job", "jobs"]), _user, st.integers(0, 11)),
    st.tuples(st.just("rerun"), st.integers(0, 2), st.integers(0, 3), st.booleans()),
)


def latest(items, pick):
    return items[-1 - pick % len(items)]


class Walk:
    """The world, what each user was shown with its model (worked out from the
    answers alone), and the invariants, checked after every step."""

    def __init__(self, users, world):
        self.users = users
        self.clients = [login(user) for user in users]
        self.world = [(task, list(jobs)) for task, jobs in world]
        self.tokens = [[] for _ in users]
        self.verdicts = [[] for _ in users]
        self.shown = [set() for _ in users]  # (task id, output) pairs shown with their model

    def jobs(self):
        return [job for _, jobs in self.world for job in jobs]

    def knows(self, u, job):
        return (job.task_id, job.output) in self.shown[u]

    def show(self, u, jobs):
        self.shown[u] |= {(job.task_id, job.output) for job in jobs}

    def step(self, action):
        getattr(self, "do_" + action[0])(*action[1:])

    def do_next(self, u):
        body, assignment = next_pair(self.clients[u])
        if body is None:
            return
        served = [assignment.job_a, assignment.job_b]
        assert not any(self.knows(u, job) for job in served), "served blind an output whose model was shown"
        self.tokens[u].append(body["pair"])

    def do_verdict(self, u, index, side):
        if not self.tokens[u]:
            return
        token = latest(self.tokens[u], index)
        assignment = PairAssignment.objects.select_related("job_a", "job_b").get(token=token)
        known_before = any(self.knows(u, job) for job in (assignment.job_a, assignment.job_b))
        skipped, judged = assignment.skipped_at is not None, assignment.judgement_id is not None
        response = verdict(self.clients[u], token, side)
        if response.status_code != 201:
            assert response.status_code in (409, 410), response.content
            return
        assert not skipped and not judged, "a spent token took a verdict"
        answer = response.json()
        assert not (answer["blind"] and known_before), "stored blind by a reviewer who had seen a model"
        self.show(u, [assignment.job_a, assignment.job_b])  # the reveal
        self.verdicts[u].append(answer["id"])

    def do_undo(self, u, index):
        if self.verdicts[u]:
            self.clients[u].delete(f"/api/judgements/{latest(self.verdicts[u], index)}")

    def do_skip(self, u, index):
        if self.tokens[u]:
            response = self.clients[u].post(f"/api/pairs/{latest(self.tokens[u], index)}/skip")
            assert response.status_code in (204, 409, 410)

    def do_review_page(self, u, t):
        task, jobs = self.world[t % len(self.world)]
        assert self.clients[u].get(f"/tasks/{task.pk}/").status_code == 200
        self.show(u, jobs)

    def do_poll(self, u, t):
        task, jobs = self.world[t % len(self.world)]
        assert self.clients[u].get(f"/api/tasks/{task.pk}/jobs").status_code == 200
        self.show(u, jobs)

    def do_job(self, u, j):
        job = self.jobs()[j % len(self.jobs())]
        assert self.clients[u].get(f"/api/jobs/{job.pk}").status_code == 200
        self.show(u, [job])

    def do_jobs(self, u, j):
        shown = self.jobs()[j % len(self.jobs()) :][:3]
        assert self.clients[u].get("/api/jobs?ids=" + ",".join(str(job.pk) for job in shown)).status_code == 200
        self.show(u, shown)

    def do_rerun(self, t, m, same_text):
        """A newer output of a model: the same text (deterministic) or a new one."""
        task, jobs = self.world[t % len(self.world)]
        provider, model = MODELS[m]
        old = [job for job in jobs if job.model == model]
        text = old[-1].output if same_text and old else f"{model} again on {task.pk}, run {len(jobs)}."
        jobs.append(finished(task, provider, model, text))

    def check_stored(self):
        """Every blind verdict: its author had not been shown either output with its model before it."""
        for judgement in Judgement.objects.filter(blind=True).select_related("job_a", "job_b"):
            earlier = Judgement.objects.filter(reviewer=judgement.reviewer, pk__lt=judgement.pk)
            named = {j for pair in earlier.values_list("job_a__output", "job_b__output") for j in pair}
            assert judgement.job_a.output not in named and judgement.job_b.output not in named


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    # Pair order and sides are random (job ids, shown_left): a failing sequence need not fail
    # twice alike, so it is reported as found, not shrunk.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(ACTIONS, min_size=20, max_size=30))
def test_no_sequence_stores_blind_a_verdict_by_someone_who_saw_a_model(make_task, reviewer, staff, steps):
    savepoint = transaction.savepoint()
    seen.forget_cache()
    try:
        walk = Walk([reviewer, staff], make_world(make_task, tasks=2, models=3))
        for action in steps:
            walk.step(action)
        walk.check_stored()
    finally:
        transaction.savepoint_rollback(savepoint)
        seen.forget_cache()


# --- what a GET may write ---------------------------------------------------------------------------


def test_gets_write_only_what_was_seen_and_pair_assignments(make_task, reviewer):
    """One INSERT at most per answer, into ModelSeen (or PairAssignment for /api/pairs/next)."""
    (task, jobs), *_ = make_world(make_task, tasks=2, models=2)
    client = login(reviewer)
    allowed = {ModelSeen._meta.db_table: "ModelSeen", PairAssignment._meta.db_table: "PairAssignment"}
    urls = [
        "/api/pairs/next",
        "/pairs/",
        f"/tasks/{task.pk}/",
        f"/api/tasks/{task.pk}/jobs",
        f"/api/jobs/{jobs[0].pk}",
        f"/api/jobs?ids={jobs[0].pk},{jobs[1].pk}",
    ]
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        writes = [q["sql"] for q in queries if WRITE.match(q["sql"])]
        assert len(writes) <= 1, (url, writes)
        assert all(any(table in sql for table in allowed) for sql in writes), (url, writes)
