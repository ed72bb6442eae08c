"""Judge-only models (the catalogue's ``judge_only``, set for echo-judge): offered
as the judge of a judge run on /runs/ and nowhere else. They are no run button
on the review page, no model of the "New run" form, and a generate job or run
of one is refused (400 ``invalid``, field model); a judge run of one is made.
The form's judge section itself is tested in the browser (test_browser_judge_run.py)."""

import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from eval.models import LLMJob, Run
from eval.providers import catalogue
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def runs_config(response):
    html = response.content.decode()
    start = html.index('<script id="runs-config" type="application/json">') + len(
        '<script id="runs-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def model_names(providers):
    return {f"{p['name']}/{m['name']}" for p in providers for m in p["models"]}


def test_it_flags_echo_judge_and_only_it_as_judge_only():
    flagged = {m.name for m in catalogue.ECHO.models() if m.judge_only}
    assert flagged == {"echo-judge"}


def test_it_lists_judge_only_models_with_the_flag_in_the_model_catalogue(reviewer):
    body = login(reviewer).get("/api/models").json()
    echo = next(p for p in body["providers"] if p["name"] == "echo")
    assert {m["name"]: m["judge_only"] for m in echo["models"]} == {
        "echo": False,
        "echo-brief": False,
        "echo-reverse": False,
        "echo-judge": True,
    }


def test_it_offers_no_run_button_for_a_judge_model_on_the_review_page(reviewer, make_task):
    task = make_task()
    html = login(reviewer).get(f"/tasks/{task.pk}/").content.decode()
    assert 'data-model="echo-brief"' in html
    assert 'data-model="echo-judge"' not in html and "Run echo-judge" not in html


def test_it_lists_judge_models_only_in_the_judge_form_of_the_runs_page(staff, make_task):
    make_task()
    a = Run.objects.create(name="Alpha", provider="echo", model="echo", status=Run.Status.DONE, created_by=staff)
    b = Run.objects.create(name="Beta", provider="echo", model="echo-brief", status="running", created_by=staff)
    Run.objects.create(name="Weekly", provider="echo", model="echo", schedule="0 9 * * 1", status="scheduled")
    Run.objects.create(name="Old judge", kind="judge", provider="echo", model="echo-judge", compare_a=a, compare_b=b)
    config = runs_config(login(staff).get("/runs/"))
    assert "echo/echo-judge" not in model_names(config["providers"])
    assert "echo/echo" in model_names(config["providers"])
    judge = config["judge"]
    assert {"echo/echo-judge", "echo/echo"} <= model_names(judge["providers"])
    # A and B: generate and imported runs with jobs to judge, newest first (not a schedule, not a judge run).
    assert [run["name"] for run in judge["runs"]] == ["Beta", "Alpha"]
    assert judge["rubrics"][0]["label"] == "default v1"


def test_it_gives_no_judge_form_to_a_reviewer_who_may_not_launch(reviewer):
    config = runs_config(login(reviewer).get("/runs/"))
    assert "judge" not in config


def test_it_refuses_a_generate_job_of_a_judge_model(reviewer, make_task):
    task = make_task()
    response = login(reviewer).post(
        f"/api/tasks/{task.pk}/jobs", {"provider": "echo", "model": "echo-judge"}, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "model")
    assert "judge model" in error["message"]
    assert not LLMJob.objects.exists()


def test_it_refuses_a_generate_run_of_a_judge_model_and_makes_a_judge_run_of_it(staff, make_task):
    make_task()
    client = login(staff)

    def post(body):
        return client.post("/api/runs", body, content_type="application/json")

    refused = post({"name": "plain", "provider": "echo", "model": "echo-judge"})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "model"
    a = post({"name": "a", "provider": "echo", "model": "echo"}).json()["id"]
    b = post({"name": "b", "provider": "echo", "model": "echo-brief"}).json()["id"]
    judged = post(
        {"name": "j", "kind": "judge", "provider": "echo", "model": "echo-judge", "judge": {"compare": [a, b]}}
    )
    assert judged.status_code == 201, judged.content
    assert judged.json()["kind"] == "judge" and judged.json()["model"] == "echo-judge"


def test_a_launcher_without_review_rights_gets_the_judge_form(db, django_user_model):
    user = django_user_model.objects.create_user("lena", password="pw-lena-123")
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    assert "judge" in runs_config(login(user).get("/runs/"))


def test_the_bulk_command_refuses_a_judge_model(make_task):
    make_task()
    with pytest.raises(CommandError, match="judge model"):
        call_command("enqueue_llm_jobs", "--provider", "echo", "--model", "echo-judge", "--yes", stdout=io.StringIO())
    assert not LLMJob.objects.exists()
