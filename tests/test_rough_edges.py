"""Rough edges a new reviewer met (issue: the whole evaluation from the
browser), outside the browser: the rubric admin says the questions' format
with an example that is itself valid."""

import json

import pytest
from django.utils import timezone

from eval.admin import QUESTIONS_HINT
from eval.evaluation.reviews.rubrics import check_questions
from eval.models import LLMJob
from tests.helpers import login


def test_the_rubric_questions_hint_shows_a_valid_example():
    example = json.loads(QUESTIONS_HINT[QUESTIONS_HINT.index("[{") :])
    check_questions(example)
    assert {q["type"] for q in example} == {"rating", "boolean", "text"}


@pytest.mark.django_db
def test_the_rubric_admin_form_shows_the_hint(staff, plain_http):
    staff.is_superuser = True
    staff.save()
    html = login(staff).get("/admin/eval/rubric/add/").content.decode()
    assert "A JSON list of questions" in html and '"type": "rating"' in html


@pytest.mark.django_db
def test_the_job_admin_filters_by_error_code_without_a_blank_choice(staff, task, plain_http):
    staff.is_superuser = True
    staff.save()
    now = timezone.now()
    failed = LLMJob.objects.create(
        task=task, provider="echo", model="echo", status="failed", error_code="timeout", available_at=now
    )
    LLMJob.objects.create(task=task, provider="echo", model="echo", status="succeeded", available_at=now)
    client = login(staff)
    listing = client.get("/admin/eval/llmjob/").content.decode()
    assert 'href="?error_code=timeout"' in listing and 'href="?error_code="' not in listing
    filtered = client.get("/admin/eval/llmjob/?error_code=timeout")
    assert [job.pk for job in filtered.context["cl"].result_list] == [failed.pk]


@pytest.mark.django_db
def test_the_task_admin_names_both_halves_of_a_date_and_time(staff, plain_http):
    staff.is_superuser = True
    staff.save()
    html = login(staff).get("/admin/eval/task/add/").content.decode()
    assert 'aria-label="Missing since: date"' in html and 'aria-label="Missing since: time"' in html
