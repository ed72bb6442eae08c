"""Prompt templates: versions, the sandbox's limits, previews, and what jobs and runs
send with one (messages_sent, exactly; system included)."""

import json
import time

import pytest
from django.contrib.auth.models import Permission

from eval.jobs import claims, prompt_templates
from eval.models import LLMJob, PromptTemplate, Run, Task
from eval.worker.attempt import generation_request
from tests.helpers import login
from tests.test_commands import run as command
from tests.test_results import output, pairwise  # the results tests' row builders

pytestmark = pytest.mark.django_db

QA = {
    "name": "qa",
    "system": "You answer {{ metadata.lang }}.",
    "messages": [{"role": "user", "content": "Q: {{ prompt }}"}],
}


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def launcher(reviewer):
    reviewer.user_permissions.add(Permission.objects.get(codename="launch_run"))
    return reviewer


@pytest.fixture
def fr_task(make_task):
    return make_task(prompt="What is {{ 7*7 }}?", reference="49", title="Maths", metadata={"lang": "in French"})


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def error(response):
    return response.json()["error"]


def save(client, body=QA):
    response = post(client, "/api/templates", body)
    assert response.status_code == 201, response.content
    return response.json()


# --- saving: versions, who may ------------------------------------------------------------


def test_saving_a_name_again_makes_its_next_version(launcher):
    client = login(launcher)
    first = save(client)
    assert (first["name"], first["version"], first["used"]) == ("qa", 1, False)
    second = save(client, {**QA, "system": ""})
    assert second["version"] == 2 and second["id"] != first["id"]
    assert PromptTemplate.objects.get(pk=first["id"]).system == QA["system"]  # version 1 never changed
    listed = client.get("/api/templates").json()["templates"]
    assert [(t["name"], t["version"]) for t in listed] == [("qa", 2), ("qa", 1)]
    assert client.get(f"/api/templates/{first['id']}").json()["messages"] == QA["messages"]


def test_creating_needs_launch_run(reviewer, outsider):
    response = post(login(reviewer), "/api/templates", QA)
    assert response.status_code == 403 and error(response)["code"] == "forbidden"
    assert login(outsider).get("/api/templates").json() == {"templates": []}
    assert login(outsider).get("/api/templates/1").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**QA, "messages": [{"role": "user", "content": "{% for %}"}]}, "messages[0].content"),
        ({**QA, "system": "{{ unclosed"}, "system"),
        ({**QA, "messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({**QA, "messages": [{"role": "user", "content": "x" * (20 * 1024 + 1)}]}, "messages"),
        ({**QA, "messages": [{"role": "user", "content": "{% macro m() %}{% endmacro %}"}]}, "messages[0].content"),
    ],
)
def test_a_bad_template_is_400_naming_the_part(launcher, body, field):
    response = post(login(launcher), "/api/templates", body)
    assert response.status_code == 400, response.content
    assert (error(response)["code"], error(response)["field"]) == ("invalid", field)
    assert not PromptTemplate.objects.exists()


# --- previews ----------------------------------------------------------------------------------


def test_preview_of_a_saved_template_and_of_a_draft(launcher, fr_task):
    client = login(launcher)
    template = save(client)
    expected = [
        {"role": "system", "content": "You answer in French."},
        {"role": "user", "content": "Q: What is {{ 7*7 }}?"},  # task text is data: never rendered
    ]
    response = post(client, f"/api/templates/{template['id']}/preview", {"task": fr_task.id})
    assert response.status_code == 200 and response.json() == {"messages": expected}
    draft = {"system": "", "messages": [{"role": "user", "content": "{{ title|upper }}: {{ reference }}"}]}
    response = post(client, "/api/templates/preview", {**draft, "task": fr_task.id})
    assert response.json() == {"messages": [{"role": "user", "content": "MATHS: 49"}]}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{{ metadata.missing }}", "metadata.missing"),
        ("{{ nothing }}", "'nothing' is undefined"),
        ("{{ reference }}", "'reference' is undefined"),
    ],
)
def test_a_missing_variable_names_the_task_and_the_variable(launcher, make_task, content, words):
    task = make_task(prompt="p", reference="", metadata={})
    body = {"system": "", "messages": [{"role": "user", "content": content}], "task": task.id}
    response = post(login(launcher), "/api/templates/preview", body)
    assert response.status_code == 400
    assert error(response)["code"] == "invalid" and error(response)["field"] == "template"
    assert f"task {task.id}" in error(response)["message"] and words in error(response)["message"]


def test_a_failing_message_is_named_as_the_editor_counts_it(launcher, make_task):
    """From 1, with its role: "messages[2]" left the reader counting from 0."""
    task = make_task(prompt="p", reference="", metadata={})
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "{{ metadata.topic }}"},
    ]
    response = post(login(launcher), "/api/templates/preview", {"system": "s", "messages": messages, "task": task.id})
    assert "(in message 3 (user))" in error(response)["message"], error(response)["message"]
    broken = post(login(launcher), "/api/templates", {**QA, "messages": [{"role": "user", "content": "{% for %}"}]})
    assert error(broken)["field"] == "messages[0].content"
    assert error(broken)["message"].startswith("message 1 (user): template syntax error")


@pytest.mark.parametrize(
    "content",
    [
        "{{ 'x' * 10**9 }}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{{ 'x'|center(10**9) }}",
        "{{ range(100000)|join('x' * 100000) }}",
        "{{ ('x' * 100000)|replace('x', 'y' * 1000) }}",
        "{{ '%0999999999d'|format(1) }}",
        "{{ 10 ** 1000 }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ prompt.format() }}",
        "{{ [prompt * 1000] * 100000 }}",
        "{{ ('x' * 150000) ~ ('x' * 150000) }}",
        "{% set a = 'x' * 150000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ 1 }}",
        "{{ range(1)|batch(100000, 'x' * 100000)|first|tojson }}",
    ],
)
def test_bombs_are_a_clear_400_quickly(launcher, task, content):
    body = {"system": "", "messages": [{"role": "user", "content": content}], "task": task.id}
    started = time.monotonic()
    response = post(login(launcher), "/api/templates/preview", body)
    assert time.monotonic() - started < 2
    assert response.status_code == 400, response.content
    assert error(response)["code"] == "invalid" and f"task {task.id}" in error(response)["message"]


def test_rendering_stops_at_max_prompt_chars(launcher, task, settings):
    settings.MAX_PROMPT_CHARS = 1000
    body = {"system": "", "messages": [{"role": "user", "content": "{% for a in range(5000) %}ab{% endfor %}"}]}
    response = post(login(launcher), "/api/templates/preview", {**body, "task": task.id})
    assert response.status_code == 400 and "MAX_PROMPT_CHARS (1000)" in error(response)["message"]


def test_preview_of_an_unseen_task_is_400(launcher):
    body = {"system": "", "messages": [{"role": "user", "content": "x"}], "task": 99999}
    response = post(login(launcher), "/api/templates/preview", body)
    assert response.status_code == 400 and error(response)["field"] == "task"


# --- jobs and runs made with a template ------------------------------------------------------


def test_a_job_stores_and_sends_exactly_its_messages(launcher, fr_task):
    client = login(launcher)
    template = save(client)
    response = post(
        client, f"/api/tasks/{fr_task.id}/jobs", {"provider": "echo", "model": "echo", "template": template["id"]}
    )
    assert response.status_code == 201, response.content
    job = response.json()
    sent = [
        {"role": "system", "content": "You answer in French."},
        {"role": "user", "content": "Q: What is {{ 7*7 }}?"},
    ]
    assert (job["template"], job["template_name"], job["messages_sent"]) == (template["id"], "qa v1", sent)
    # The task changing later changes nothing of what the job sends.
    Task.objects.filter(pk=fr_task.pk).update(prompt="changed")
    claimed = claims.claim(job["id"], "w1").job
    request = generation_request(claimed)
    assert (request.system, request.turns()) == ("You answer in French.", (("user", "Q: What is {{ 7*7 }}?"),))
    assert client.get(f"/api/templates/{template['id']}").json()["used"] is True


def test_a_job_without_a_template_stores_what_it_sends(reviewer, task):
    response = post(
        login(reviewer),
        f"/api/tasks/{task.id}/jobs",
        {"provider": "echo", "model": "echo", "params": {"system": "Be brief."}},
    )
    assert response.json()["template"] is None
    assert response.json()["messages_sent"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": task.prompt},
    ]


def test_a_template_system_prompt_with_params_system_is_400(launcher, fr_task):
    client = login(launcher)
    template = save(client)
    body = {"provider": "echo", "model": "echo", "template": template["id"], "params": {"system": "x"}}
    response = post(client, f"/api/tasks/{fr_task.id}/jobs", body)
    assert response.status_code == 400 and error(response)["field"] == "params.system"
    response = post(client, "/api/runs", {"name": "r", "provider": "echo", "model": "echo", **body, "tasks": {}})
    assert response.status_code == 400 and error(response)["field"] == "params.system"
    assert not LLMJob.objects.exists() and not Run.objects.exists()


def test_an_unknown_template_is_400(reviewer, task):
    body = {"provider": "echo", "model": "echo", "template": 12345}
    response = post(login(reviewer), f"/api/tasks/{task.id}/jobs", body)
    assert response.status_code == 400 and error(response)["field"] == "template"


def test_a_run_renders_every_task_before_any_job(launcher, make_task):
    client = login(launcher)
    good = make_task(prompt="a", metadata={"lang": "in Welsh"})
    bad = make_task(prompt="b", metadata={})
    template = save(client)
    body = {"name": "r", "provider": "echo", "model": "echo", "template": template["id"], "tasks": {}}
    response = post(client, "/api/runs", body)
    assert response.status_code == 400, response.content
    assert f"task {bad.id}" in error(response)["message"] and "metadata.lang" in error(response)["message"]
    assert not LLMJob.objects.exists() and not Run.objects.exists()
    bad.delete()
    response = post(client, "/api/runs", body)
    assert response.status_code == 201, response.content
    assert (response.json()["template"], response.json()["template_name"]) == (template["id"], "qa v1")
    job = LLMJob.objects.get()
    assert job.task_id == good.id and job.template_id == template["id"]
    assert job.messages_sent[0] == {"role": "system", "content": "You answer in Welsh."}


def test_used_templates_are_protected(launcher, task):
    template = prompt_templates.save(name="t", system="", messages=[{"role": "user", "content": "{{ prompt }}"}])
    post(login(launcher), f"/api/tasks/{task.id}/jobs", {"provider": "echo", "model": "echo", "template": template.pk})
    with pytest.raises(Exception, match="protected"):
        template.delete()


# --- results grouped by template version ------------------------------------------------------


def test_results_can_be_grouped_by_template_version(make_task, staff, reviewer):

    v1 = prompt_templates.save(name="qa", system="", messages=[{"role": "user", "content": "{{ prompt }}"}])
    v2 = prompt_templates.save(name="qa", system="", messages=[{"role": "user", "content": "Q: {{ prompt }}"}])
    for _ in range(2):
        task = make_task()
        plain, first, second = (output(task, "m1") for _ in range(3))
        LLMJob.objects.filter(pk=first.pk).update(template=v1)
        LLMJob.objects.filter(pk=second.pk).update(template=v2)
        pairwise(task, second, first, "a", reviewer=reviewer)
        pairwise(task, second, plain, "a", reviewer=reviewer)
    answer = login(staff).get("/api/results?group_by=template").json()
    assert answer["group_by"] == "template"
    rows = {row["key"]: row for row in answer["rows"]}
    assert set(rows) == {"echo/m1 · no template", "echo/m1 · qa v1", "echo/m1 · qa v2"}
    assert rows["echo/m1 · qa v2"]["template"] == {"id": v2.pk, "name": "qa v2"}
    human = [f for f in rows["echo/m1 · qa v2"]["figures"] if f["judged_by"] == "human"][0]
    assert (human["wins"], human["losses"]) == (4, 0)
    plain_answer = login(staff).get("/api/results").json()
    assert [row["key"] for row in plain_answer["rows"]] == ["echo/m1"]  # by model: the versions together
    response = login(staff).get("/api/results?group_by=template&runs=1")
    assert response.status_code == 400 and response.json()["error"]["field"] == "group_by"


def test_the_runs_command_takes_a_template(make_task, staff):
    task = make_task(prompt="p", metadata={"lang": "Basque"})
    template = prompt_templates.save(name="cli", system="In {{ metadata.lang }}.", messages=QA["messages"])
    command("runs", "create", "--name", "cli", "--provider", "echo", "--model", "echo", "--template", str(template.pk))
    job = LLMJob.objects.get(task=task)
    assert job.template_id == template.pk and job.messages_sent[0] == {"role": "system", "content": "In Basque."}


def test_the_preview_task_picker_names_tasks_as_reviewers_know_them(launcher, make_task):
    """Tasks without a title were a bare "#36": now source / external id and the
    start of the prompt."""
    untitled = make_task(prompt="Name a prime number greater than 10", title="")
    html = login(launcher).get("/templates/").content.decode()
    shown = f"{untitled.source} / {untitled.external_id}: Name a prime number greater than 10 (#{untitled.pk})"
    assert shown in html, html[html.index('id="preview-task"') :][:400]
