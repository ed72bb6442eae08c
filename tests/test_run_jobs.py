"""A run's work: GET /api/runs/<id>/jobs (keyset pages by task, the filters,
the ETag/304 poll, who sees what, "seen" records) and the run page's frame."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from eval.evaluation.reviews import seen
from eval.models import LLMJob, ModelSeen, Review
from tests.helpers import login
from tests.run_fixtures import make_run, settle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def launcher(django_user_model):
    user = django_user_model.objects.create_user("lena", password="pw-lena-123")
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def test_it_pages_every_task_of_a_big_run_by_keyset(reviewer, staff, make_task):
    run = make_run(staff)
    tasks = [make_task(reference="ok") for _ in range(120)]
    for task in reversed(tasks):
        settle(run, task, "ok", checks={"exact": True})
    client = login(reviewer)
    seen_ids, after, pages = [], "", 0
    while True:
        data = client.get(f"/api/runs/{run.pk}/jobs" + (f"?after={after}" if after else "")).json()
        pages += 1
        assert data["count"] == 120 and data["run"] == run.pk
        seen_ids += [job["task"] for job in data["jobs"]]
        if not data["next"]:
            break
        after = data["next"]
    assert pages == 3 and seen_ids == [task.pk for task in tasks]  # by task, none twice, none left out
    first = client.get(f"/api/runs/{run.pk}/jobs").json()["jobs"][0]
    assert first["task_ref"] == {"id": tasks[0].pk, "title": tasks[0].title, "external_id": tasks[0].external_id}
    assert first["checks"] == {"exact": True} and first["output"] == "ok" and first["usage"]["output_tokens"] == 4


def test_its_filters_find_failed_checks_errors_and_what_i_have_not_reviewed(reviewer, staff, make_task):
    run = make_run(staff, checks=("exact", "contains"))
    passed, failed_check, errored, reviewed = (make_task(reference="x") for _ in range(4))
    settle(run, passed, "x", checks={"exact": True, "contains": True})
    settle(run, failed_check, "y x", checks={"exact": False, "contains": True})
    settle(run, errored, status="failed")
    settle(run, reviewed, "x", checks={"exact": True, "contains": True})
    Review.objects.create(task=reviewed, reviewer=reviewer, rating=4)
    client = login(reviewer)

    def tasks(show):
        return [job["task"] for job in client.get(f"/api/runs/{run.pk}/jobs?show={show}").json()["jobs"]]

    assert tasks("failed_checks") == [failed_check.pk]
    assert tasks("errors") == [errored.pk]
    assert tasks("unreviewed") == [passed.pk, failed_check.pk, errored.pk]
    assert tasks("") == [passed.pk, failed_check.pk, errored.pk, reviewed.pk]
    bad = client.get(f"/api/runs/{run.pk}/jobs?show=everything")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    assert client.get(f"/api/runs/{run.pk}/jobs?after=12.nothex").status_code == 400


def test_it_answers_304_until_a_job_changes(reviewer, staff, make_task):
    run = make_run(staff, status="running")
    job = settle(run, make_task(), "partial", status="running")
    client = login(reviewer)
    first = client.get(f"/api/runs/{run.pk}/jobs")
    tag = first["ETag"]
    assert client.get(f"/api/runs/{run.pk}/jobs", HTTP_IF_NONE_MATCH=tag).status_code == 304
    assert client.get(f"/api/runs/{run.pk}/jobs?show=errors", HTTP_IF_NONE_MATCH=tag).status_code == 200
    # Every change of the job engine stamps updated_at (the run poll's tag reads the newest).
    LLMJob.objects.filter(pk=job.pk).update(output="partial and more", version=2, updated_at=timezone.now())
    again = client.get(f"/api/runs/{run.pk}/jobs", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 200 and again.json()["jobs"][0]["output"] == "partial and more"


def test_showing_outputs_with_their_models_records_them_seen(reviewer, staff, make_task):
    run = make_run(staff)
    shown = make_task()
    settle(run, shown, "out")
    seen.forget_cache()
    login(reviewer).get(f"/api/runs/{run.pk}/jobs")
    assert ModelSeen.objects.filter(user=reviewer, job__task=shown).exists()


def test_only_reviewers_see_outputs(outsider, launcher, staff, make_task):
    run = make_run(staff)
    settle(run, make_task(), "secret output")
    assert login(outsider).get(f"/api/runs/{run.pk}/jobs").status_code == 404
    answer = login(launcher).get(f"/api/runs/{run.pk}/jobs")
    assert answer.status_code == 200 and answer.json()["jobs"] == [] and b"secret" not in answer.content
    assert login(staff).get(f"/api/runs/{run.pk + 1}/jobs").status_code == 404
    assert login(staff).get("/api/runs/abc/jobs").status_code == 404


def test_the_run_page_has_the_cards_filters_and_links(reviewer, staff, make_task):
    run = make_run(staff)
    html = login(staff).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-jobs"' in html and 'data-show="failed_checks"' in html and 'class="job-task-link"' in html
    assert f'href="/results/?runs={run.pk}"' in html and "eval/run.js" in html  # its entry module imports runjobs.js
    html = login(reviewer).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-jobs"' in html and "/results/?runs=" not in html  # results are for staff
    review = login(reviewer).get(f"/tasks/{make_task().pk}/").content.decode()
    assert 'id="job-card-template"' in review and "job-task-link" not in review
