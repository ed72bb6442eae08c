"""Exports (DESIGN "Evaluation"): tasks, judgements and preference pairs as
JSONL and CSV, from ``manage.py export_reviews`` and ``GET
/api/exports/<what>.<jsonl|csv>``. JSONL and CSV read back equal (after the
formula escape is undone), whatever the text holds."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from eval.evaluation.exports import Export
from eval.evaluation.exports.formats import BOM, cell, json_line, unescape_cell
from eval.evaluation.reviews import judgements
from eval.evaluation.reviews.rubrics import rubric_for_source
from eval.jobs import claims, create, endings
from eval.models import ApiToken, Judgement, LLMJob, Review
from tests.helpers import login

pytestmark = pytest.mark.django_db

NASTY = [
    '=HYPERLINK("http://x", "click")',
    "+1+2",
    "-3",
    "@SUM(A1)",
    "\tleading tab",
    "\rleading return",
    "'already quoted",
    "''twice",
    "plain, with a comma",
    'a "quoted" word',
    "two\nlines\r\nand a return",
    "unicode: héllo 世界 🎉 \u2028 \u2029 \x85 end",
    "",
]

# How each CSV column reads back (the JSONL value's type).
INT, FLOAT, BOOL, JSON, TEXT, NULLABLE = "int", "float", "bool", "json", "text", "nullable"
NULLABLE_JSON = "nullable json"
COLUMN_TYPES = {
    "tasks": {
        "id": INT,
        "metadata": JSON,
        "messages": NULLABLE_JSON,
        "human_judgements": INT,
        "judge_judgements": INT,
        "stale_judgements": INT,
        "scores": JSON,
        "pairwise": JSON,
        "reviews": JSON,
        "mean_rating": FLOAT,
    },
    "judgements": {
        "id": INT,
        "task": INT,
        "jobs": JSON,
        "models": JSON,
        "answers": JSON,
        "blind": BOOL,
        "stale": BOOL,
        "hidden": BOOL,
        "verdict": NULLABLE,
        "shown_left": NULLABLE,
        "reviewer": NULLABLE,
        "judge_model": NULLABLE,
    },
    "pairs": {"task": INT, "messages": NULLABLE_JSON},
}


def _decode(kind, text):
    if text == "" and kind in (FLOAT, NULLABLE, NULLABLE_JSON):
        return None
    decoders = {
        INT: int,
        FLOAT: float,
        BOOL: {"true": True, "false": False}.__getitem__,
        JSON: json.loads,
        NULLABLE_JSON: json.loads,
    }
    return decoders.get(kind, str)(text)


def read_csv(what, text):
    assert text.startswith(BOM)
    reader = csv.DictReader(io.StringIO(text.removeprefix(BOM), newline=""))
    types = COLUMN_TYPES[what]
    return [
        {name: _decode(types.get(name, TEXT), unescape_cell(value)) for name, value in row.items()} for row in reader
    ]


def read_jsonl(text):
    lines = text.split("\n")
    assert lines[-1] == ""
    return [json.loads(line) for line in lines[:-1]]


def export(what, fmt, **options):
    return "".join(Export(what, fmt, **options))


def succeeded_job(task, user, model, output):
    job, _ = create.create_job(task=task, provider="echo", model=model, created_by=user)
    attempt = claims.claim(job.pk, "w1").job.attempt
    endings.succeed_one(job.pk, "w1", attempt, output=output, stop_reason="end_turn")
    job.refresh_from_db()
    return job


def judge_verdict(task, job_a, job_b, verdict):
    """An LLM judge's pairwise judgement, as a judge job's success writes it."""
    judge = LLMJob.objects.create(
        kind=LLMJob.Kind.JUDGE, task=task, provider="echo", model="echo-judge", available_at=timezone.now()
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
def judged(make_task, staff, reviewer):
    """Two tasks of source "tests" (formula-looking, unicode, multi-line text
    everywhere), one of source "other"; human scores and verdicts, an LLM
    judge's verdict, a review."""
    task = make_task(prompt=NASTY[0] + "\n" + NASTY[11], title=NASTY[1], reference=NASTY[10], metadata={"k": NASTY[3]})
    second = make_task(prompt=NASTY[2], title=NASTY[6])
    other = make_task(prompt="other source", source="other")
    a = succeeded_job(task, staff, "echo", NASTY[4] + " " + NASTY[8])
    b = succeeded_job(task, staff, "echo-brief", NASTY[5] + NASTY[9])
    c = succeeded_job(second, staff, "echo", NASTY[7])
    d = succeeded_job(second, staff, "echo-reverse", NASTY[12])
    o1, o2 = succeeded_job(other, staff, "echo", "x"), succeeded_job(other, staff, "echo-brief", "y")
    record = judgements.record
    record(reviewer=reviewer, task=task, kind="score", jobs=[a], answers={"quality": 4, "comment": NASTY[0]})
    record(reviewer=staff, task=task, kind="score", jobs=[a], answers={"quality": 5})
    record(reviewer=reviewer, task=task, kind="pairwise", jobs=[a, b], verdict="b", notes=NASTY[3], blind=True)
    record(reviewer=staff, task=second, kind="pairwise", jobs=[c, d], verdict="a", notes=NASTY[10])
    record(reviewer=staff, task=other, kind="pairwise", jobs=[o1, o2], verdict="a")
    judge_verdict(task, a, b, "a")
    Review.objects.create(task=task, reviewer=reviewer, rating=4, preferred_job=b, notes=NASTY[1])
    Review.objects.create(task=task, reviewer=staff, rating=3)
    return {"tasks": [task, second, other], "jobs": [a, b, c, d]}


# --- the formats ------------------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_it_escapes_formula_cells_reversibly(text):
    escaped = cell(text)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(escaped) == text


def test_it_writes_values_as_cells():
    assert [cell(None), cell(True), cell(False), cell(3), cell(2.5)] == ["", "true", "false", "3", "2.5"]
    assert cell({"a": "é"}) == '{"a": "é"}' and cell(["=x"]) == '["=x"]' and cell({}) == "{}"


def test_it_keeps_each_jsonl_row_on_one_line_for_every_line_splitter():
    line = json_line({"text": NASTY[10] + NASTY[11]})
    assert line.endswith("\n") and len(line.splitlines()) == 1
    assert json.loads(line)["text"] == NASTY[10] + NASTY[11]


@pytest.mark.parametrize("what", ["tasks", "judgements", "pairs"])
def test_it_round_trips_jsonl_and_csv(judged, what):
    rows = read_jsonl(export(what, "jsonl"))
    assert rows and read_csv(what, export(what, "csv")) == rows
    assert read_jsonl(export(what, "jsonl", batch_size=1)) == rows  # keyset batches change nothing


def test_it_puts_formula_looking_text_in_spreadsheet_safe_cells(judged):
    text = export("tasks", "csv")
    cells = [value for row in csv.reader(io.StringIO(text.removeprefix(BOM), newline="")) for value in row]
    assert NASTY[1] not in cells and "'" + NASTY[1] in cells  # the title "+1+2"
    assert all(not value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in cells)


# --- the rows ---------------------------------------------------------------------------


def test_it_summarises_each_tasks_current_human_judgements_and_reviews(judged):
    task, second, other = judged["tasks"]
    rows = {row["id"]: row for row in read_jsonl(export("tasks", "jsonl"))}
    assert list(rows) == [task.id, second.id, other.id]
    row = rows[task.id]
    assert (row["title"], row["prompt"], row["reference"], row["metadata"]) == (
        task.title,
        task.prompt,
        task.reference,
        task.metadata,
    )
    assert (row["human_judgements"], row["judge_judgements"], row["stale_judgements"]) == (3, 1, 0)
    assert row["scores"] == {"echo/echo": {"n": 2, "quality": 4.5}}
    assert row["pairwise"] == {
        "echo/echo": {"wins": 0, "losses": 1, "ties": 0, "both_bad": 0},
        "echo/echo-brief": {"wins": 1, "losses": 0, "ties": 0, "both_bad": 0},
    }
    assert row["reviews"] == [
        {"reviewer": "alice", "rating": 4, "preferred_model": "echo/echo-brief", "notes": NASTY[1]},
        {"reviewer": "sam", "rating": 3, "preferred_model": None, "notes": ""},
    ]
    assert row["mean_rating"] == 3.5
    assert rows[other.id]["reviews"] == [] and rows[other.id]["mean_rating"] is None


def test_it_exports_each_current_judgement(judged):
    task = judged["tasks"][0]
    a, b = judged["jobs"][:2]
    rows = read_jsonl(export("judgements", "jsonl", source="tests"))
    assert len(rows) == 5
    blind = next(row for row in rows if row["blind"])
    assert blind["jobs"] == [str(a.pk), str(b.pk)] and blind["models"] == ["echo/echo", "echo/echo-brief"]
    assert (blind["kind"], blind["verdict"], blind["reviewer"]) == ("pairwise", "b", "alice")
    assert blind["judge_model"] is None
    assert (blind["task"], blind["source"], blind["notes"], blind["stale"]) == (task.id, "tests", NASTY[3], False)
    judge = next(row for row in rows if row["judge_model"])
    assert (judge["reviewer"], judge["judge_model"], judge["verdict"]) == (None, "echo/echo-judge", "a")
    score = next(row for row in rows if row["kind"] == "score" and row["reviewer"] == "alice")
    assert score["verdict"] is None and score["answers"] == {"quality": 4, "comment": NASTY[0]}


def test_it_makes_preference_pairs_from_verdicts_that_pick_a_side(judged):
    task, second, _ = judged["tasks"]
    a, b, c, d = judged["jobs"]
    pairs = read_jsonl(export("pairs", "jsonl", source="tests"))
    assert pairs == [
        {
            "prompt": task.prompt,
            "chosen": b.output,
            "rejected": a.output,
            "chosen_model": "echo/echo-brief",
            "rejected_model": "echo/echo",
            "task": task.id,
            "judged_by": "alice",
            "messages": None,
        },
        {
            "prompt": second.prompt,
            "chosen": c.output,
            "rejected": d.output,
            "chosen_model": "echo/echo",
            "rejected_model": "echo/echo-reverse",
            "task": second.id,
            "judged_by": "sam",
            "messages": None,
        },
        {
            "prompt": task.prompt,
            "chosen": a.output,
            "rejected": b.output,
            "chosen_model": "echo/echo",
            "rejected_model": "echo/echo-brief",
            "task": task.id,
            "judged_by": "llm:echo/echo-judge",
            "messages": None,
        },
    ]


def test_it_leaves_out_ties_both_bad_and_hidden_outputs(judged, reviewer, staff):
    task, second, _ = judged["tasks"]
    a, b, c, d = judged["jobs"]
    judgements.record(reviewer=reviewer, task=second, kind="pairwise", jobs=[c, d], verdict="tie")
    judgements.record(reviewer=staff, task=second, kind="pairwise", jobs=[c, d], verdict="both_bad")  # supersedes "a"
    assert [pair["task"] for pair in read_jsonl(export("pairs", "jsonl", source="tests"))] == [task.id, task.id]
    LLMJob.objects.filter(pk=b.pk).update(hidden=True)
    assert read_jsonl(export("pairs", "jsonl", source="tests")) == []
    hidden = [row for row in read_jsonl(export("judgements", "jsonl", source="tests")) if row["hidden"]]
    assert len(hidden) == 2  # the judgements export keeps them, marked


def test_it_never_exports_withdrawn_or_superseded_judgements(judged, reviewer):
    task = judged["tasks"][0]
    a, b = judged["jobs"][:2]
    first = Judgement.objects.get(task=task, reviewer=reviewer, kind="pairwise")
    newer = judgements.record(reviewer=reviewer, task=task, kind="pairwise", jobs=[a, b], verdict="a")
    ids = {row["id"] for row in read_jsonl(export("judgements", "jsonl"))}
    assert newer.pk in ids and first.pk not in ids
    summary = read_jsonl(export("tasks", "jsonl"))[0]
    assert summary["human_judgements"] == 3 and summary["pairwise"]["echo/echo"]["wins"] == 1
    judgements.withdraw(reviewer, newer.pk)  # undo: the one it superseded counts again
    ids = {row["id"] for row in read_jsonl(export("judgements", "jsonl"))}
    assert newer.pk not in ids and first.pk in ids
    assert read_jsonl(export("tasks", "jsonl"))[0]["pairwise"]["echo/echo"]["losses"] == 1


def test_it_leaves_out_stale_judgements_unless_asked(judged):
    task = judged["tasks"][0]
    task.prompt = "the prompt changed at the source"
    task.save()
    rows = read_jsonl(export("judgements", "jsonl", source="tests"))
    assert {row["task"] for row in rows} == {judged["tasks"][1].id}
    assert all(row["task"] != task.id for row in read_jsonl(export("pairs", "jsonl")))
    summary = read_jsonl(export("tasks", "jsonl"))[0]
    assert (summary["human_judgements"], summary["judge_judgements"], summary["stale_judgements"]) == (0, 0, 3)
    assert summary["scores"] == {} and summary["pairwise"] == {}
    stale = [row for row in read_jsonl(export("judgements", "jsonl", include_stale=True)) if row["task"] == task.id]
    assert len(stale) == 4 and all(row["stale"] for row in stale)
    summary = read_jsonl(export("tasks", "jsonl", include_stale=True))[0]
    assert (summary["human_judgements"], summary["stale_judgements"]) == (3, 3)


# --- manage.py export_reviews -----------------------------------------------------------


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_reviews", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_writes_to_stdout(judged):
    out, err = run_command("--format", "jsonl", "--what", "pairs")
    assert out == export("pairs", "jsonl") and len(read_jsonl(out)) == 4
    assert "exported 4 pairs" in err


def test_command_writes_a_file_with_o(judged, tmp_path):
    target = tmp_path / "tasks.csv"
    out, err = run_command("--format", "csv", "--what", "tasks", "-o", str(target))
    assert out == "" and f"exported 3 tasks to {target}" in err
    assert read_csv("tasks", target.read_bytes().decode("utf-8")) == read_jsonl(export("tasks", "jsonl"))
    assert [path.name for path in tmp_path.iterdir()] == ["tasks.csv"]  # no partial file left


def test_command_filters_by_source(judged):
    other = judged["tasks"][2]
    out, _ = run_command("--format", "csv", "--what", "tasks", "--source", "other")
    assert [row["id"] for row in read_csv("tasks", out)] == [other.id]
    out, _ = run_command("--format", "jsonl", "--what", "judgements", "--source", "other")
    assert [row["source"] for row in read_jsonl(out)] == ["other"]
    out, _ = run_command("--format", "jsonl", "--what", "pairs", "--source", "nowhere")
    assert out == ""


def test_command_refuses_an_unknown_format_or_kind(db):
    for args in (("--format", "xml", "--what", "tasks"), ("--format", "csv", "--what", "everything")):
        with pytest.raises(CommandError):
            run_command(*args)


# --- GET /api/exports/<what>.<jsonl|csv> ------------------------------------------------


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def download(client, url, **headers):
    response = client.get(url, **headers)
    body = b"".join(response.streaming_content).decode() if response.streaming else None
    return response, body


def test_api_streams_a_download_to_staff(judged, staff):
    response, body = download(login(staff), "/api/exports/pairs.jsonl?source=tests")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="pairs-')
    assert response["Content-Disposition"].endswith('.jsonl"')
    assert body == export("pairs", "jsonl", source="tests")
    response, body = download(login(staff), "/api/exports/tasks.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8" and response["Content-Disposition"].endswith('.csv"')
    assert read_csv("tasks", body) == read_jsonl(export("tasks", "jsonl"))


def test_api_takes_include_stale(judged, staff):
    task = judged["tasks"][0]
    task.reference = "a new reference"
    task.save()
    _, body = download(login(staff), "/api/exports/judgements.jsonl?include_stale=true")
    assert sum(row["stale"] for row in read_jsonl(body)) == 4


def test_api_works_with_a_token(judged, staff):
    _, raw = ApiToken.issue(staff, "exports")
    response, body = download(Client(), "/api/exports/judgements.csv", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200 and len(read_csv("judgements", body)) == 6


def test_api_refuses_non_staff_and_anonymous(judged, reviewer):
    response = login(reviewer).get("/api/exports/tasks.jsonl")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    response = Client().get("/api/exports/tasks.jsonl")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("path", ["everything.jsonl", "tasks.xml", "tasks", "tasks.csv.csv", "pairs.JSONL"])
def test_api_answers_404_for_an_unknown_export(staff, path):
    response = login(staff).get(f"/api/exports/{path}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", ["include_stale=maybe", "source=" + "x" * 201])
def test_api_answers_400_for_a_bad_query(staff, query):
    response = login(staff).get(f"/api/exports/tasks.csv?{query}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
