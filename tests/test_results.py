"""GET /api/results on real rows: what counts (current, visible, non-stale
unless asked), humans and judges apart, blind and not apart, rows per model
or per run, staff only. The statistics themselves: tests/test_stats.py."""

import itertools
import uuid

import pytest
from django.utils import timezone

from eval.evaluation.reviews import rubrics
from eval.models import Judgement, LLMJob, Run
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


JOB_IDS = itertools.count(1)  # ids in creation order: which output of a pair is "first" is known


def output(task, model, *, run=None, hidden=False, checks=None):
    return LLMJob.objects.create(
        id=uuid.UUID(int=next(JOB_IDS)),
        task=task,
        provider="echo",
        model=model,
        run=run,
        status="succeeded",
        output=model,
        output_hash=f"h-{model}",
        prompt_hash=task.prompt_hash,
        available_at=timezone.now(),
        hidden=hidden,
        check_results=checks or {},
    )


def judge_job(task):
    return LLMJob.objects.create(
        task=task, kind="judge", provider="echo", model="echo-judge", status="succeeded", available_at=timezone.now()
    )


def pairwise(task, a, b, verdict, *, reviewer=None, judge=False, blind=False, left=None, **fields):
    return Judgement.objects.create(
        kind="pairwise",
        task=task,
        reviewer=reviewer,
        judge_job=judge_job(task) if judge else None,
        judge_provider="echo" if judge else "",
        judge_model="echo-judge" if judge else "",
        job_a=a,
        job_b=b,
        output_hash_a=a.output_hash,
        output_hash_b=b.output_hash,
        prompt_hash=task.prompt_hash,
        rubric=rubrics.default_rubric(),
        verdict=verdict,
        shown_left=left or a,
        blind=blind,
        **fields,
    )


def score(task, job, quality, *, reviewer):
    return Judgement.objects.create(
        kind="score",
        task=task,
        reviewer=reviewer,
        job_a=job,
        output_hash_a=job.output_hash,
        prompt_hash=task.prompt_hash,
        rubric=rubrics.default_rubric(),
        answers={"quality": quality},
    )


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def world(make_task, staff, reviewer):
    """Two tasks, each with outputs of m1 and m2."""
    tasks = [make_task(), make_task()]
    jobs = [{model: output(task, model) for model in ("m1", "m2")} for task in tasks]
    return tasks, jobs


def get(user, query=""):
    response = login(user).get("/api/results" + query)
    return response.status_code, response.json()


def figures(answer, key, judged_by="human", blind=False, judge=None):
    row = next(row for row in answer["rows"] if row["key"] == key)
    return next(f for f in row["figures"] if (f["judged_by"], f["blind"], f["judge"]) == (judged_by, blind, judge))


def test_it_is_for_staff_only(client, reviewer, staff):
    assert client.get("/api/results").status_code == 401
    status, body = get(reviewer)
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert get(staff)[0] == 200


def test_it_counts_current_judgements_only(world, staff, reviewer):
    (t1, t2), jobs = world
    old = pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "b", reviewer=reviewer)
    pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "a", reviewer=reviewer, supersedes=old)  # counts
    pairwise(t2, jobs[1]["m1"], jobs[1]["m2"], "b", reviewer=reviewer, withdrawn_at=timezone.now())
    _, answer = get(staff)
    assert [row["key"] for row in answer["rows"]] == ["echo/m1", "echo/m2"]
    assert answer["judgements"] == 1 and answer["group_by"] == "model"
    m1, m2 = figures(answer, "echo/m1"), figures(answer, "echo/m2")
    assert (m1["wins"], m1["losses"], m2["wins"], m2["losses"]) == (1, 0, 0, 1)
    assert m1["rating"]["elo"] > 1000 > m2["rating"]["elo"]


def test_a_withdrawn_newer_judgement_lets_the_older_count_again(world, staff, reviewer):
    (t1, _), jobs = world
    old = pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "b", reviewer=reviewer)
    pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "a", reviewer=reviewer, supersedes=old, withdrawn_at=timezone.now())
    assert figures(get(staff)[1], "echo/m2")["wins"] == 1


def test_stale_judgements_are_left_out_unless_asked(world, staff, reviewer):
    (t1, t2), jobs = world
    pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "a", reviewer=reviewer)
    pairwise(t2, jobs[1]["m1"], jobs[1]["m2"], "a", reviewer=reviewer)
    t2.prompt = "a changed prompt"
    t2.save()
    assert figures(get(staff)[1], "echo/m1")["wins"] == 1
    _, answer = get(staff, "?include_stale=1")
    assert answer["include_stale"] is True and figures(answer, "echo/m1")["wins"] == 2


def test_hidden_outputs_and_other_sources_are_left_out(world, staff, reviewer, make_task):
    (t1, _), jobs = world
    pairwise(t1, jobs[0]["m1"], output(t1, "m3", hidden=True), "a", reviewer=reviewer)
    other = make_task(source="elsewhere")
    pairwise(other, output(other, "m1"), output(other, "m2"), "a", reviewer=reviewer)
    _, answer = get(staff, "?source=tests")
    assert answer["judgements"] == 0 and answer["rows"] == []
    _, answer = get(staff, "?source=elsewhere")
    assert figures(answer, "echo/m1")["wins"] == 1


def test_humans_judges_blind_and_not_are_apart(world, staff, reviewer):
    (t1, t2), jobs = world
    pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "a", reviewer=reviewer, blind=True)
    pairwise(t2, jobs[1]["m1"], jobs[1]["m2"], "tie", reviewer=reviewer)
    pairwise(t1, jobs[0]["m1"], jobs[0]["m2"], "b", judge=True, blind=True)
    pairwise(t2, jobs[1]["m1"], jobs[1]["m2"], "both_bad", judge=True, blind=True)
    _, answer = get(staff)
    segments = [(s["judged_by"], s["judge"], s["blind"]) for s in answer["segments"]]
    assert segments == [("human", None, True), ("human", None, False), ("judge", "echo/echo-judge", True)]
    assert figures(answer, "echo/m1", blind=True)["wins"] == 1
    assert figures(answer, "echo/m1")["ties"] == 1
    judged = figures(answer, "echo/m1", "judge", True, "echo/echo-judge")
    assert (judged["wins"], judged["losses"], judged["both_bad"], judged["judgements"]) == (0, 1, 1, 2)
    matrix = {"keys": ["echo/m1", "echo/m2"], "rates": [[None, 1.0], [0.0, None]], "games": [[0, 1], [1, 0]]}
    assert answer["segments"][0]["win_rate"] == matrix


def test_rows_per_run(make_task, staff, reviewer):
    exact = [{"type": "exact"}]
    runs = [Run.objects.create(name=f"run {n}", provider="echo", model="m1", checks=exact) for n in range(3)]
    task = make_task()
    a, b, c = (output(task, "m1", run=run, checks={"exact": n != 1}) for n, run in enumerate(runs))
    pairwise(task, a, b, "a", reviewer=reviewer)
    pairwise(task, a, c, "b", reviewer=reviewer)  # run 2 is not asked for
    _, answer = get(staff, f"?runs={runs[1].pk},{runs[0].pk}")
    assert answer["group_by"] == "run" and answer["runs"] == [runs[1].pk, runs[0].pk]
    assert [row["run"]["name"] for row in answer["rows"]] == ["run 1", "run 0"]
    assert figures(answer, str(runs[0].pk))["wins"] == 1 and answer["judgements"] == 1
    assert [(c["check"], c["passed"], c["n"]) for c in answer["rows"][0]["checks"]] == [("exact", 0, 1)]
    assert answer["rows"][1]["checks"][0]["rate"] == 1.0
    status, body = get(staff, "?runs=999999")
    assert status == 400 and body["error"]["field"] == "runs"
    assert get(staff, "?runs=1,x")[0] == 400


def test_score_means_with_t_intervals(world, staff, reviewer, bob):
    (t1, t2), jobs = world
    score(t1, jobs[0]["m1"], 3, reviewer=reviewer)
    score(t2, jobs[1]["m1"], 5, reviewer=bob)
    _, answer = get(staff)
    assert answer["questions"] == ["quality"]
    m1 = figures(answer, "echo/m1")
    assert m1["scores"] == 2 and m1["judgements"] == 2 and m1["rating"] is None
    quality = m1["questions"][0]
    # mean 4, sd sqrt(2), t(0.975, 1) = 12.7062: 4 +- 12.7062 * sqrt(2) / sqrt(2)
    assert quality["n"] == 2 and quality["mean"] == 4
    # t's interval (4 +- 12.7062) kept on the 1-5 scale of the question
    assert quality["low"] == 1 and quality["high"] == 5


def test_position_bias_agreement_and_reviewers(world, staff, reviewer, bob):
    (t1, t2), jobs = world
    m1, m2 = jobs[0]["m1"], jobs[0]["m2"]
    pairwise(t1, m1, m2, "a", reviewer=reviewer, left=m1)  # left won
    pairwise(t1, m2, m1, "b", reviewer=bob, left=m2)  # m1 again, from the right: agrees with alice
    n1, n2 = jobs[1]["m1"], jobs[1]["m2"]
    pairwise(t2, n1, n2, "tie", reviewer=reviewer)
    pairwise(t2, n1, n2, "a", reviewer=bob, left=n2)  # right won
    pairwise(t1, m1, m2, "a", judge=True, left=m1)  # with the majority... of one item (t1: both say m1)
    pairwise(t1, m2, m1, "a", judge=True, left=m2)  # swapped order, says m2: inconsistent
    _, answer = get(staff)
    humans, judge = answer["position_bias"]
    assert (humans["judged_by"], humans["left_wins"], humans["n"], humans["rate"]) == ("human", 1, 3, 1 / 3)
    assert (judge["judge"], judge["left_wins"], judge["n"]) == ("echo/echo-judge", 2, 2)
    agreement = answer["agreement"]
    # alice vs bob: items (first, first) and (tie, first): po 1/2, pe (1/2)(2/2) = 1/2 -> kappa 0
    assert agreement["humans"] == {"kappa": 0.0, "n": 2, "reviewer_pairs": 1}
    [judges] = agreement["judges"]
    assert judges["swap"] == {"pairs": 1, "consistent": 0, "inconsistent": 1}
    # t1 only (t2's humans split): the judge says m1 once, m2 once; the majority m1 twice -> kappa 0
    assert judges["vs_human_majority"] == {"kappa": 0.0, "n": 2}
    assert [(r["reviewer"], r["judgements"], r["left_side"]["n"]) for r in answer["reviewers"]] == [
        ("alice", 2, 1),
        ("bob", 2, 2),
    ]
    assert answer["reviewers"][0]["agreement"] == {"kappa": 0.0, "n": 2}
