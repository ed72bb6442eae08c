"""Conversation tasks end to end: a record's ``messages`` through the importer,
the worker's request to the provider, the API's task and job JSON, the blind
pairs answer, the exports and the review page."""

import asyncio
import json

import pytest
from django.urls import reverse

from eval.evaluation.exports import Export
from eval.jobs import claims, create, endings
from eval.models import LLMJob, Task, prompt_fingerprint
from eval.providers.base import GenerationRequest
from eval.providers.echo import EchoProvider
from eval.sync import sync_tasks
from eval.sync.records import InvalidRecord, content_hash, validate
from eval.worker.attempt import generation_request
from eval.worker.service import serve
from tests.helpers import login

CHAT = [
    {"role": "system", "content": "You answer in French."},
    {"role": "user", "content": "Say hello"},
    {"role": "assistant", "content": "Bonjour"},
    {"role": "user", "content": "Now say goodbye to everyone"},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# --- the record ------------------------------------------------------------------------


def test_a_conversation_record_needs_no_prompt_and_prompts_with_its_last_turn():
    record = validate({"id": "c1", "messages": CHAT, "reference": "Au revoir"})
    assert record.messages == CHAT
    assert record.prompt == "Now say goodbye to everyone"
    assert record.prompt_hash == prompt_fingerprint(record.prompt, "Au revoir", CHAT)
    assert json.loads(record.messages_json) == CHAT


def test_a_record_without_messages_keeps_the_content_hash_it_always_had():
    record = validate({"id": "p1", "prompt": "Hi", "reference": "Hello"})
    assert record.messages is None and record.messages_json is None
    assert record.content_hash == content_hash("p1", "", "Hi", "Hello", "{}")
    assert record.prompt_hash == prompt_fingerprint("Hi", "Hello")


def test_messages_in_a_csv_cell_are_json_text():
    record = validate({"id": "c2", "prompt": "", "messages": json.dumps(CHAT[1:])})
    assert record.messages == CHAT[1:]


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([], "non-empty list"),
        ("not json", "not valid JSON"),
        ([{"role": "user"}], "'content' must be a non-blank string"),
        ([{"role": "robot", "content": "x"}], "'role' must be one of"),
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}],
            "only come first",
        ),
        (
            [{"role": "system", "content": "s"}, {"role": "system", "content": "t"}, {"role": "user", "content": "u"}],
            "only come first",
        ),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message must be 'user'"),
        ([{"role": "system", "content": "only a system turn"}], "last message must be 'user'"),
        ([{"role": "user", "content": "a", "name": "x"}], "unknown key"),
        ([{"role": "user", "content": "a\x00b"}], "NUL"),
        (["hello"], "not an object"),
    ],
)
def test_a_bad_conversation_is_refused_with_its_reason(messages, reason):
    with pytest.raises(InvalidRecord, match=reason):
        validate({"id": "bad", "messages": messages})


@pytest.mark.django_db
def test_the_importer_stores_the_conversation_and_reports_bad_ones(tmp_path):
    source = write_jsonl(
        tmp_path / "chats.jsonl",
        [
            {"id": "c1", "messages": CHAT, "reference": "Au revoir"},
            {"id": "p1", "prompt": "A plain prompt"},
            {"id": "c2", "messages": [{"role": "assistant", "content": "I speak first"}]},
        ],
    )
    result = sync_tasks(source)
    assert (result.created, result.invalid) == (2, 1)
    assert "line 3" in result.skipped[0][0] and "last message must be 'user'" in result.skipped[0][1]
    chat = Task.objects.get(external_id="c1")
    assert chat.messages == CHAT and chat.prompt == "Now say goodbye to everyone"
    assert chat.prompt_hash == prompt_fingerprint(chat.prompt, chat.reference, CHAT)
    assert Task.objects.get(external_id="p1").messages is None

    again = sync_tasks(source)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    changed = [{"id": "c1", "messages": [*CHAT[:3], {"role": "user", "content": "Say goodbye"}]}]
    write_jsonl(source, [*changed, {"id": "p1", "prompt": "A plain prompt"}])
    assert sync_tasks(source).updated == 1
    chat.refresh_from_db()
    assert chat.messages[-1]["content"] == "Say goodbye" and chat.prompt == "Say goodbye"


# --- the request the provider gets ------------------------------------------------------


def claimed(task, **params):
    job, _ = create.create_job(task=task, provider="echo", model="echo", params=params or None)
    return job, claims.claim(job.pk, "w1").job


@pytest.mark.django_db
def test_the_worker_asks_with_the_turns_and_joins_the_system_texts(make_task):
    task = make_task(prompt=CHAT[-1]["content"], messages=CHAT)
    _, job = claimed(task, system="Be brief.")
    request = generation_request(job)
    assert request.system == "You answer in French.\n\nBe brief."
    assert request.turns() == (("user", "Say hello"), ("assistant", "Bonjour"), ("user", "Now say goodbye to everyone"))

    plain = make_task(prompt="just one prompt")
    _, job = claimed(plain)
    request = generation_request(job)
    assert (request.system, request.turns()) == ("", (("user", "just one prompt"),))


def test_echo_answers_the_last_turn_and_counts_every_turn_as_input(settings):
    settings.ECHO_CHUNK_DELAY_MS = 0
    request = GenerationRequest(
        "echo",
        "ignored",
        100,
        system="two words",
        messages=(("user", "a b c"), ("assistant", "d"), ("user", "last turn here")),
    )
    result = asyncio.run(EchoProvider().stream(request, lambda text, n: None))
    assert result.text == "last turn here"
    assert result.input_tokens == 2 + 3 + 1 + 3


@pytest.mark.django_db(transaction=True)
def test_a_conversation_job_runs_to_success_on_the_worker(make_task, fast_jobs):
    task = make_task(prompt=CHAT[-1]["content"], messages=CHAT)
    job, _ = create.create_job(task=task, provider="echo", model="echo-reverse")
    asyncio.run(serve(transport="db", once=True))
    job.refresh_from_db()
    assert job.status == "succeeded", job.message
    assert job.output == "everyone to goodbye say Now"
    assert job.prompt_hash == task.prompt_hash


# --- what people and scripts see ---------------------------------------------------------


@pytest.fixture
def chat_task(make_task):
    return make_task(prompt=CHAT[-1]["content"], messages=CHAT, reference="Au revoir")


@pytest.mark.django_db
def test_task_and_job_json_show_the_conversation(client, reviewer, chat_task, make_task, plain_http):
    plain = make_task(prompt="plain")
    job, _ = create.create_job(task=chat_task, provider="echo", model="echo", created_by=reviewer)
    client = login(reviewer)
    tasks = {t["id"]: t for t in client.get("/api/tasks").json()["tasks"]}
    assert tasks[chat_task.id]["messages"] == CHAT and tasks[plain.id]["messages"] is None
    assert client.get(f"/api/jobs/{job.pk}").json()["messages"] == CHAT
    polled = client.get(f"/api/tasks/{chat_task.id}/jobs").json()["jobs"]
    assert polled[0]["messages"] == CHAT


def succeed(job, output):
    attempt = claims.claim(job.pk, "w1").job.attempt
    endings.succeed_one(job.pk, "w1", attempt, output=output, stop_reason="end_turn")


@pytest.mark.django_db
def test_blind_pairs_and_exports_carry_the_conversation(client, reviewer, staff, chat_task, plain_http):
    for model, output in (("echo", "Au revoir à tous"), ("echo-brief", "Salut")):
        job, _ = create.create_job(task=chat_task, provider="echo", model=model, created_by=reviewer)
        succeed(job, output)
    client = login(reviewer)
    pair = client.get("/api/pairs/next").json()
    assert pair["task"]["messages"] == CHAT and pair["task"]["prompt"] == CHAT[-1]["content"]
    verdict = client.post(f"/api/pairs/{pair['pair']}/verdict", {"verdict": "left"}, content_type="application/json")
    assert verdict.status_code == 201, verdict.content

    tasks = [json.loads(line) for line in "".join(Export("tasks", "jsonl")).splitlines()]
    assert tasks[0]["messages"] == CHAT
    pairs = [json.loads(line) for line in "".join(Export("pairs", "jsonl")).splitlines()]
    assert pairs[0]["messages"] == CHAT
    csv_text = "".join(Export("tasks", "csv"))
    assert json.dumps(CHAT[0]["content"]) in csv_text.replace('""', '"')


@pytest.mark.django_db
def test_the_review_page_shows_the_turns_as_a_conversation(client, reviewer, chat_task, plain_http):
    client = login(reviewer)
    html = client.get(reverse("review", args=[chat_task.id])).content.decode()
    assert 'id="task-conversation"' in html and 'id="task-prompt"' not in html
    for turn in CHAT:
        assert f"turn-{turn['role']}" in html and turn["content"] in html
    assert html.index("You answer in French.") < html.index("Bonjour") < html.index("Now say goodbye")


@pytest.mark.django_db
def test_a_job_on_a_too_long_conversation_is_refused(make_task, settings):
    settings.MAX_PROMPT_CHARS = 50
    task = make_task(prompt="short", messages=[{"role": "user", "content": "x" * 40}, *CHAT[2:]])
    with pytest.raises(Exception, match="MAX_PROMPT_CHARS"):
        create.create_job(task=task, provider="echo", model="echo")
    assert not LLMJob.objects.exists()
