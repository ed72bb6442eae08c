"""The rubric admin: a used rubric is never edited in place; bad questions are refused."""

import json

import pytest

from eval.evaluation.reviews import judgements
from eval.jobs import claims, create, endings
from eval.models import Rubric, SourceRubric

pytestmark = pytest.mark.django_db

QUESTIONS = [{"key": "ok", "label": "Correct", "type": "boolean", "required": True}]


@pytest.fixture
def admin_client(client, django_user_model, plain_http):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin)
    return client


def change(client, rubric, **fields):
    data = {"name": rubric.name, "guidelines": rubric.guidelines, "questions": json.dumps(rubric.questions)}
    data.update(fields)
    return client.post(f"/admin/eval/rubric/{rubric.pk}/change/", data, secure=True)


def test_editing_an_unused_rubric_changes_it(admin_client):
    rubric = Rubric.objects.create(name="code", questions=QUESTIONS)
    assert change(admin_client, rubric, guidelines="Run it first.").status_code == 302
    rubric.refresh_from_db()
    assert (rubric.version, rubric.guidelines, Rubric.objects.count()) == (1, "Run it first.", 2)  # + default


def test_editing_a_used_rubric_makes_the_next_version(admin_client, task, reviewer):
    rubric = Rubric.objects.create(name="code", questions=QUESTIONS)
    SourceRubric.objects.create(source=task.source, rubric=rubric)
    job, _ = create.create_job(task=task, provider="echo", model="echo")
    attempt = claims.claim(job.pk, "w").job.attempt
    endings.succeed_one(job.pk, "w", attempt, output="x", stop_reason="end_turn")
    used = judgements.record(
        reviewer=reviewer,
        task=task,
        kind="score",
        jobs=judgements.judgeable_jobs(task, [str(job.pk)]),
        answers={"ok": True},
    )
    assert change(admin_client, rubric, guidelines="Stricter now.").status_code == 302
    rubric.refresh_from_db()
    assert rubric.guidelines == "" and rubric.version == 1  # the used version is untouched
    newer = Rubric.objects.get(name="code", version=2)
    assert newer.guidelines == "Stricter now."
    assert SourceRubric.objects.get(source=task.source).rubric == newer
    used.refresh_from_db()
    assert used.rubric == rubric


def test_bad_questions_are_refused_with_the_reason(admin_client):
    rubric = Rubric.objects.create(name="code", questions=QUESTIONS)
    response = change(admin_client, rubric, questions=json.dumps([{"key": "ok", "label": "x", "type": "stars"}]))
    assert response.status_code == 200
    assert "type must be one of" in response.content.decode()
