"""Rough edges a new reviewer met (issue: the whole evaluation from the
browser), outside the browser: the rubric admin says the questions' format
with an example that is itself valid."""

import json

import pytest

from eval.admin import QUESTIONS_HINT
from eval.evaluation.reviews.rubrics import check_questions
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
