"""The judgements behind a figure: ``GET /api/judgements`` (staff; filters
``run=``, ``runs=``, ``model=``, ``source=``, ``judged_by=``, ``judge=``,
``blind=``, ``kind=``; keyset pages, newest first) and the exports' ``run=``
and ``runs=`` (the same rule: eval/evaluation/reviews/judgement_filters.py)."""

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from eval.evaluation.exports import Export
from eval.evaluation.reviews import judgement_filters, judgement_list, judgements
from eval.evaluation.reviews.rubrics import rubric_for_source
from eval.jobs import claims, create, endings
from eval.models import ApiToken, Judgement, LLMJob, Run
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def run_job(task, user, run, output):
    job, _ = create.create_job(task=task, provider="echo", model=run.model, created_by=user)
    attempt = claims.claim(job.pk, "w1").job.attempt
    endings.succeed_one(job.pk, "w1", attempt, output=output, stop_reason="end_turn")
    LLMJob.objects.filter(pk=job.pk).update(run=run)
    job.refresh_from_db()
    return job


def judge_verdict(judge_run, task, job_a, job_b, verdict):
    """An LLM judge's pairwise judgement, as a judge job of ``judge_run`` writes it."""
    judge = LLMJob.objects.create(
        kind=LLMJob.Kind.JUDGE,
        task=task,
        provider="echo",
        model="echo-judge",
        run=judge_run,
        available_at=timezone.now(),
    )
    return Judgement.objects.create(
        kind="pairwise",
        task=task,
        judge_job=judge,
        job_a=job_a,
        job_b=job_b,
        output_hash_a=job_a.output_hash,
        output_hash_b=job_b.output_hash,
        prompt_hash=task.prompt_hash,
        rubric=rubric_for_source(task.source),
        verdict=verdict,
        shown_left=job_a,
        judge_provider="echo",
        judge_model="echo-judge",
    )


@pytest.fixture
def world(make_task, staff, reviewer):
    """Runs A (echo), B (echo-brief), C (echo-reverse) over two tasks of "tests" and
    one of "other"; a judge run J of A vs B. Humans: A vs B (blind), A vs C, a score
    of A; J: A vs B on each "tests" task."""
    tasks = [make_task(prompt="first task"), make_task(prompt="second task"), make_task(source="other")]
    runs = {
        name: Run.objects.create(name=name, provider="echo", model=model, status="running", created_by=staff)
        for name, model in (("A", "echo"), ("B", "echo-brief"), ("C", "echo-reverse"))
    }
    jobs = {
        (name, n): run_job(task, staff, run, f"{name} on {n}")
        for name, run in runs.items()
        for n, task in enumerate(tasks)
    }
    judge = Run.objects.create(name="J", kind="judge", provider="echo", model="echo-judge", status="running")
    judge.compare_a, judge.compare_b = runs["A"], runs["B"]
    judge.save()
    record = judgements.record
    made = {
        "ab": record(
            reviewer=reviewer,
            task=tasks[0],
            kind="pairwise",
            jobs=[jobs["A", 0], jobs["B", 0]],
            verdict="a",
            blind=True,
        ),
        "ac": record(reviewer=reviewer, task=tasks[1], kind="pairwise", jobs=[jobs["C", 1], jobs["A", 1]], verdict="b"),
        "score": record(reviewer=staff, task=tasks[0], kind="score", jobs=[jobs["A", 0]], answers={"quality": 4}),
        "other": record(
            reviewer=staff, task=tasks[2], kind="pairwise", jobs=[jobs["A", 2], jobs["B", 2]], verdict="tie"
        ),
        "j0": judge_verdict(judge, tasks[0], jobs["B", 0], jobs["A", 0], "b"),
        "j1": judge_verdict(judge, tasks[1], jobs["A", 1], jobs["B", 1], "a"),
    }
    return {"tasks": tasks, "runs": {**runs, "J": judge}, "jobs": jobs, "made": made}


def listed(client, query=""):
    response = client.get("/api/judgements" + ("?" + query if query else ""))
    assert response.status_code == 200, response.content
    return response.json()


def ids(world, *names):
    return sorted(world["made"][name].pk for name in names)


def listed_ids(client, query):
    return sorted(row["id"] for row in listed(client, query)["judgements"])


# --- GET /api/judgements --------------------------------------------------------------------


def test_it_lists_every_counted_judgement_newest_first_with_what_it_judged(world, staff):
    body = listed(login(staff))
    assert [row["id"] for row in body["judgements"]] == sorted((j.pk for j in world["made"].values()), reverse=True)
    assert body["next"] is None
    a, j1 = world["runs"]["A"], world["made"]["j1"]
    row = next(row for row in body["judgements"] if row["id"] == j1.pk)
    assert row["models"] == ["echo/echo", "echo/echo-brief"]
    assert row["runs"] == [a.pk, world["runs"]["B"].pk] and row["judge_run"] == world["runs"]["J"].pk
    assert row["task_title"] == world["tasks"][1].title and row["source"] == "tests"
    assert row["judge"]["model"] == "echo-judge" and row["reviewer"] is None and row["verdict"] == "a"


def test_it_narrows_by_run_runs_model_and_source(world, staff):
    client = login(staff)
    a, b, c, j = (world["runs"][name].pk for name in "ABCJ")
    assert listed_ids(client, f"run={a}") == ids(world, "ab", "ac", "score", "other", "j0", "j1")
    assert listed_ids(client, f"run={a},{b}") == ids(world, "ab", "other", "j0", "j1")  # a win-rate cell
    assert listed_ids(client, f"run={b},{a}") == ids(world, "ab", "other", "j0", "j1")
    assert listed_ids(client, f"run={c}") == ids(world, "ac")
    assert listed_ids(client, f"run={j}") == ids(world, "j0", "j1")  # a judge run: its verdicts
    assert listed_ids(client, f"runs={a},{b}") == ids(world, "ab", "score", "other", "j0", "j1")  # the results' scope
    assert listed_ids(client, f"runs={a},{b}&run={a}&source=tests") == ids(world, "ab", "score", "j0", "j1")
    assert listed_ids(client, "model=echo/echo-reverse") == ids(world, "ac")
    assert listed_ids(client, "model=echo/echo,echo/echo-reverse") == ids(world, "ac")
    assert listed_ids(client, "source=other") == ids(world, "other")


def test_it_picks_a_results_segment(world, staff):
    client = login(staff)
    assert listed_ids(client, "judged_by=judge") == ids(world, "j0", "j1")
    assert listed_ids(client, "judge=echo/echo-judge") == ids(world, "j0", "j1")
    assert listed_ids(client, "judged_by=human&blind=true") == ids(world, "ab")
    assert listed_ids(client, "judged_by=human&blind=false&kind=pairwise") == ids(world, "ac", "other")
    assert listed_ids(client, "kind=score") == ids(world, "score")
    assert listed_ids(client, "judged_by=&blind=&kind=") == ids(world, *world["made"])  # empty is no filter


def test_it_leaves_out_withdrawn_superseded_stale_and_hidden_ones_as_the_results_do(world, staff, reviewer):
    client = login(staff)
    made, tasks, jobs = world["made"], world["tasks"], world["jobs"]
    judgements.withdraw(reviewer, made["ac"].pk)
    newer = judgements.record(reviewer=staff, task=tasks[0], kind="score", jobs=[jobs["A", 0]], answers={"quality": 2})
    assert listed_ids(client, "kind=score") == [newer.pk]
    Judgement.objects.filter(pk=made["other"].pk).update(prompt_hash="before")
    assert made["other"].pk not in listed_ids(client, "")
    assert made["other"].pk in listed_ids(client, "include_stale=true")
    LLMJob.objects.filter(pk=jobs["B", 1].pk).update(hidden=True)
    assert made["j1"].pk not in listed_ids(client, "")


def test_it_pages_by_keyset_newest_first(world, staff, reviewer):
    task, job = world["tasks"][0], world["jobs"]["C", 0]
    rubric = rubric_for_source(task.source)
    for _ in range(60):
        Judgement.objects.create(
            kind="score",
            task=task,
            reviewer=staff,
            job_a=job,
            output_hash_a=job.output_hash,
            prompt_hash=task.prompt_hash,
            rubric=rubric,
            answers={"quality": 3},
        )
    client = login(staff)
    first = listed(client, f"run={world['runs']['C'].pk}")
    assert len(first["judgements"]) == 50 and first["next"] == first["judgements"][-1]["id"]
    # a newer judgement made between the pages: it is not on the next page, and nothing repeats
    newer = judgements.record(reviewer=reviewer, task=task, kind="score", jobs=[job], answers={"quality": 5})
    second = listed(client, f"run={world['runs']['C'].pk}&after={first['next']}")
    assert second["next"] is None
    seen = [row["id"] for row in first["judgements"] + second["judgements"]]
    assert len(seen) == len(set(seen)) == 61 and seen == sorted(seen, reverse=True) and newer.pk not in seen


def test_a_page_of_fresh_judgements_reads_past_stale_ones(world, staff):
    """Staleness is decided on the rows read, a few at a time: pages stay full and in order."""
    task, job = world["tasks"][0], world["jobs"]["C", 0]
    made = [
        Judgement.objects.create(
            kind="score",
            task=task,
            reviewer=staff,
            job_a=job,
            output_hash_a=job.output_hash,
            prompt_hash=task.prompt_hash if n % 4 == 0 else "an earlier prompt",
            rubric=rubric_for_source(task.source),
            answers={"quality": 3},
        )
        for n in range(20)
    ]
    fresh = sorted((j.pk for j in made if j.prompt_hash == task.prompt_hash), reverse=True)
    scope = judgement_filters.build(model="echo/echo-reverse", kind="score")
    pages, after = [], None
    while True:
        rows, after = judgement_list.chosen(scope, after=after, size=2, read=3)
        pages.append([j.pk for j in rows])
        if after is None:
            break
    assert pages == [fresh[0:2], fresh[2:4], fresh[4:5]]
    rows, _ = judgement_list.chosen(scope, include_stale=True, size=30)
    assert [j.pk for j in rows] == sorted((j.pk for j in made), reverse=True)


def test_it_is_for_staff_only(world, reviewer, outsider):
    response = Client().get("/api/judgements")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    for user in (reviewer, outsider):
        response = login(user).get("/api/judgements")
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_it_takes_a_staff_token(world, staff):
    _, raw = ApiToken.issue(staff, "judgements")
    response = Client().get("/api/judgements?judged_by=judge", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200 and len(response.json()["judgements"]) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("run=999999", "run"),
        ("run=1,2,3", "run"),
        ("run=x", "run"),
        ("runs=1,,2", "runs"),
        ("model=echo", "model"),
        ("model=a/b,c/d,e/f", "model"),
        ("judge=echo", "judge"),
        ("judged_by=robot", "judged_by"),
        ("kind=essay", "kind"),
        ("blind=perhaps", "blind"),
        ("after=-1", "after"),
        ("source=" + "x" * 201, "source"),
    ],
)
def test_it_answers_400_naming_the_field_for_a_bad_filter(world, staff, query, field):
    response = login(staff).get("/api/judgements?" + query)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and error.get("field", field).endswith(field)


@pytest.mark.parametrize("query", ["model=a%00b/c", "source=a%00b", "judge=x/%00"])
def test_it_refuses_text_the_database_cannot_take(world, staff, query):
    response = login(staff).get("/api/judgements?" + query)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


# --- the /judgements/ page ----------------------------------------------------------------


def test_the_page_lists_what_the_api_lists_with_the_filters_in_words(world, staff):
    a, b, j = (world["runs"][name] for name in "ABJ")
    client = login(staff)
    response = client.get(f"/judgements/?run={a.pk},{b.pk}&judged_by=judge&judge=echo/echo-judge")
    assert response.status_code == 200
    html = response.content.decode()
    shown = [int(part.split('"')[0]) for part in html.split('data-judgement="')[1:]]
    assert shown == [row["id"] for row in listed(client, f"run={a.pk},{b.pk}&judge=echo/echo-judge")["judgements"]]
    assert shown == sorted(ids(world, "j0", "j1"), reverse=True)
    assert f"between runs #{a.pk} A and #{b.pk} B" in html and "LLM judge echo/echo-judge" in html
    assert html.count("echo/echo better") == 2 and f'href="/runs/{j.pk}/"' in html
    assert 'href="/results/" aria-current="page"' in html


def test_the_page_pages_and_keeps_the_filters(world, staff):
    task, job = world["tasks"][0], world["jobs"]["C", 0]
    for _ in range(55):
        Judgement.objects.create(
            kind="score",
            task=task,
            reviewer=staff,
            job_a=job,
            output_hash_a=job.output_hash,
            prompt_hash=task.prompt_hash,
            rubric=rubric_for_source(task.source),
            answers={"quality": 3},
        )
    client = login(staff)
    first = client.get("/judgements/?kind=score&source=tests")
    assert first.context["next_cursor"] is not None and len(first.context["rows"]) == 50
    older = f'href="?source=tests&amp;kind=score&amp;after={first.context["next_cursor"]}"'
    assert older in first.content.decode()
    second = client.get(f"/judgements/?source=tests&kind=score&after={first.context['next_cursor']}")
    assert len(second.context["rows"]) == 56 - 50 and second.context["next_cursor"] is None


def test_the_page_is_for_staff_and_refuses_a_bad_filter(world, staff, reviewer):
    assert Client().get("/judgements/").status_code == 302
    assert login(reviewer).get("/judgements/").status_code == 403
    for query in ("run=999999", "blind=perhaps", "judged_by=robot", "model=nonsense"):
        response = login(staff).get("/judgements/?" + query)
        assert response.status_code == 400, query


# --- the exports' run= and runs= -----------------------------------------------------------


def exported(what, **options):
    return [json.loads(line) for line in "".join(Export(what, "jsonl", **options)).splitlines()]


def test_exports_take_a_run_as_the_list_does(world, staff):
    a, b, j = (world["runs"][name].pk for name in "ABJ")
    for query, options in (
        (f"run={a}", {"run": str(a)}),
        (f"run={a},{b}", {"run": f"{a},{b}"}),
        (f"runs={a},{b}", {"runs": f"{a},{b}"}),
    ):
        listed_rows = listed_ids(login(staff), query)
        assert sorted(row["id"] for row in exported("judgements", **options)) == listed_rows, query
    assert sorted(row["id"] for row in exported("judgements", run=j)) == ids(world, "j0", "j1")
    # pairs: verdicts that pick a side, of run A's outputs on "tests" tasks (the tie on "other" left out)
    pairs = exported("pairs", run=str(a), source="tests")
    assert sorted((p["chosen_model"], p["rejected_model"]) for p in pairs) == [
        ("echo/echo", "echo/echo-brief"),
        ("echo/echo", "echo/echo-brief"),
        ("echo/echo", "echo/echo-brief"),
        ("echo/echo", "echo/echo-reverse"),
    ]


def test_the_tasks_export_takes_the_tasks_a_run_has_a_job_on(world, staff, make_task):
    make_task(prompt="no run here")
    a = world["runs"]["A"]
    assert [row["id"] for row in exported("tasks", run=str(a.pk))] == [t.pk for t in world["tasks"]]
    assert [row["id"] for row in exported("tasks", run=str(a.pk), source="other")] == [world["tasks"][2].pk]
    judge_tasks = exported("tasks", run=str(world["runs"]["J"].pk))
    assert [row["id"] for row in judge_tasks] == [t.pk for t in world["tasks"][:2]]
    assert judge_tasks[0]["judge_judgements"] == 1


def test_the_download_takes_run_and_names_it(world, staff):
    a = world["runs"]["A"].pk
    response = login(staff).get(f"/api/exports/judgements.csv?run={a}")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="judgements-run{a}-')
    body = b"".join(response.streaming_content).decode()
    assert len(body.strip().splitlines()) == 1 + 6  # the header and run A's six judgements
    response = login(staff).get("/api/exports/pairs.jsonl?run=999999")
    assert response.status_code == 400 and response.json()["error"]["field"] == "run"
    response = login(staff).get("/api/exports/pairs.jsonl?run=1,2,3")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


def test_the_command_takes_run(world, capsys):
    a, b = world["runs"]["A"].pk, world["runs"]["B"].pk
    call_command("export_reviews", "--format", "jsonl", "--what", "judgements", "--run", f"{a},{b}")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["id"] for row in rows) == ids(world, "ab", "other", "j0", "j1")
