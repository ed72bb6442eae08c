"""The bulk and admin commands: enqueue_llm_jobs, create_reviewer, jobs."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from eval.jobs import claims, create, endings, outbox
from eval.models import JobStatus, LLMJob, Task
from tests.conftest import test_database_url

ROOT = Path(__file__).resolve().parent.parent


class TTYInput(io.StringIO):
    """Stdin as if typed at a terminal."""

    def isatty(self):
        return True


def run(name, *args, **options):
    """call_command; returns (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def fails(name, *args, **options):
    """The CommandError a command raises (its returncode is the exit code)."""
    with pytest.raises(CommandError) as caught:
        run(name, *args, **options)
    return caught.value


def manage(*args, stdin=subprocess.DEVNULL, input=None, env=None):
    environment = {**os.environ, "DATABASE_URL": test_database_url(), "DJANGO_SETTINGS_MODULE": "coreproject.settings"}
    environment.pop("ANTHROPIC_API_KEY", None)
    environment.pop("GEMINI_API_KEY", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environment, **(env or {})},
        stdin=None if input is not None else stdin,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


ECHO = ("--provider", "echo", "--model", "echo")


# --- enqueue_llm_jobs --------------------------------------------------------------------


@pytest.fixture
def tasks(make_task):
    """Three open tasks, one done, one missing from its source."""
    open_tasks = [make_task(prompt=f"prompt {i}") for i in range(3)]
    done = make_task(status=Task.Status.DONE)
    missing = make_task(missing_since=timezone.now())
    return {"open": open_tasks, "done": done, "missing": missing}


def jobs_by_task():
    return {job.task_id: job for job in LLMJob.objects.all()}


@pytest.mark.django_db
def test_enqueue_creates_bulk_jobs_for_open_tasks_still_in_their_source(tasks):
    out, _ = run("enqueue_llm_jobs", *ECHO, "--params", '{"max_tokens": 7, "temperature": 0.5}', "--yes")
    jobs = jobs_by_task()
    assert set(jobs) == {t.pk for t in tasks["open"]}
    for job in jobs.values():
        assert job.priority == LLMJob.Priority.BULK and job.status == JobStatus.QUEUED
        assert (job.provider, job.model, job.params) == ("echo", "echo", {"max_tokens": 7, "temperature": 0.5})
        assert job.created_by is None and job.kind == "generate"
    assert "Created 3 bulk job(s) for echo/echo" in out


@pytest.mark.django_db
def test_enqueue_dry_run_counts_and_creates_nothing(tasks):
    out, _ = run("enqueue_llm_jobs", *ECHO, "--dry-run")
    assert "would create 3 bulk job(s)" in out
    assert not LLMJob.objects.exists()


@pytest.mark.django_db
def test_enqueue_selection_options(tasks, make_task):
    run("enqueue_llm_jobs", *ECHO, "--task-status", "done", "--yes")
    assert set(jobs_by_task()) == {tasks["done"].pk}
    LLMJob.objects.all().delete()

    run("enqueue_llm_jobs", *ECHO, "--task-status", "all", "--include-missing", "--yes")
    assert len(jobs_by_task()) == 5
    LLMJob.objects.all().delete()

    run("enqueue_llm_jobs", *ECHO, "--limit", "2", "--yes")
    assert set(jobs_by_task()) == {t.pk for t in tasks["open"][:2]}  # lowest ids first
    LLMJob.objects.all().delete()

    other = make_task(source="other", external_id=tasks["open"][0].external_id)
    run("enqueue_llm_jobs", *ECHO, "--source", "other", "--yes")
    assert set(jobs_by_task()) == {other.pk}


@pytest.mark.django_db
def test_enqueue_by_ids_takes_exactly_those_tasks(tasks):
    picked = [tasks["open"][1], tasks["done"], tasks["missing"]]
    run("enqueue_llm_jobs", *ECHO, "--ids", str(picked[0].pk), f"{picked[1].pk},{picked[2].pk}", "--yes")
    assert set(jobs_by_task()) == {t.pk for t in picked}
    LLMJob.objects.all().delete()

    # --task-status still narrows an explicit list when given (missing tasks stay in).
    ids = ",".join(str(t.pk) for t in picked)
    run("enqueue_llm_jobs", *ECHO, "--ids", ids, "--task-status", "open", "--yes")
    assert set(jobs_by_task()) == {picked[0].pk, picked[2].pk}


@pytest.mark.django_db
def test_enqueue_by_external_ids(tasks, make_task):
    twin = make_task(source="other", external_id=tasks["open"][0].external_id)
    external = [tasks["open"][0].external_id, tasks["done"].external_id]
    run("enqueue_llm_jobs", *ECHO, "--external-ids", *external, "--source", "tests", "--yes")
    assert set(jobs_by_task()) == {tasks["open"][0].pk, tasks["done"].pk}
    LLMJob.objects.all().delete()
    run("enqueue_llm_jobs", *ECHO, "--external-ids", tasks["open"][0].external_id, "--yes")
    assert set(jobs_by_task()) == {tasks["open"][0].pk, twin.pk}  # every source without --source


@pytest.mark.django_db
def test_enqueue_unknown_ids_are_an_error_and_create_nothing(tasks):
    error = fails("enqueue_llm_jobs", *ECHO, "--ids", str(tasks["open"][0].pk), "999999", "--yes")
    assert error.returncode == 1 and "999999" in str(error)
    error = fails("enqueue_llm_jobs", *ECHO, "--external-ids", "nope", "--yes")
    assert error.returncode == 1 and "nope" in str(error)
    error = fails("enqueue_llm_jobs", *ECHO, "--ids", "abc", "--yes")
    assert error.returncode == 2 and "--external-ids" in str(error)
    assert not LLMJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--provider", "nope", "--model", "echo"), "unknown or unconfigured provider"),
        (("--provider", "anthropic", "--model", "claude-sonnet-4-5"), "unknown or unconfigured provider"),
        (("--provider", "echo", "--model", "gpt-5"), "unknown model"),
        ((*ECHO, "--params", "{not json"), "not valid JSON"),
        ((*ECHO, "--params", "[1, 2]"), "JSON object"),
        ((*ECHO, "--params", '{"top_k": 3}'), "unknown params: top_k"),
        ((*ECHO, "--params", '{"max_tokens": 0}'), "max_tokens"),
        ((*ECHO, "--params", '{"temperature": "hot"}'), "temperature"),
        ((*ECHO, "--limit", "0"), "--limit"),
        ((*ECHO, "--user", "nobody"), "no user named 'nobody'"),
    ],
)
def test_enqueue_refuses_a_bad_request_with_usage_exit_and_creates_nothing(tasks, args, words):
    error = fails("enqueue_llm_jobs", *args, "--yes")
    assert error.returncode == 2 and words in str(error)
    assert not LLMJob.objects.exists()


@pytest.mark.django_db
def test_enqueue_records_the_user(tasks, reviewer):
    run("enqueue_llm_jobs", *ECHO, "--user", reviewer.username, "--yes")
    assert set(LLMJob.objects.values_list("created_by", flat=True)) == {reviewer.pk}


@pytest.mark.django_db
def test_enqueue_skip_existing(tasks):
    first = tasks["open"][0]
    create.create_job(task=first, provider="echo", model="echo")
    failed, _ = create.create_job(task=tasks["open"][1], provider="echo", model="echo")
    LLMJob.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED)
    out, _ = run("enqueue_llm_jobs", *ECHO, "--skip-existing", "--yes")
    assert "Created 2 bulk job(s)" in out
    bulk = LLMJob.objects.filter(priority=LLMJob.Priority.BULK)
    assert set(bulk.values_list("task_id", flat=True)) == {tasks["open"][1].pk, tasks["open"][2].pk}


@pytest.mark.django_db
def test_enqueue_skips_and_reports_tasks_that_cannot_run(make_task, settings):
    settings.MAX_PROMPT_CHARS = 50
    good = make_task(prompt="fine")
    empty = make_task(prompt="   ")
    long = make_task(prompt="x" * 51)
    out, _ = run("enqueue_llm_jobs", *ECHO, "--yes", "--chunk-size", "1")
    assert set(jobs_by_task()) == {good.pk}
    assert "Created 1 bulk job(s)" in out and "Skipped 2 task(s)" in out
    assert f"task {empty.pk}: the task's prompt is empty" in out and f"task {long.pk}:" in out


@pytest.mark.django_db
def test_enqueue_asks_at_a_terminal(tasks):
    out, _ = run("enqueue_llm_jobs", *ECHO, stdin=TTYInput("n\n"))
    assert "Create 3 bulk job(s) for echo/echo" in out and "[y/N]" in out and "no jobs created" in out
    assert not LLMJob.objects.exists()
    run("enqueue_llm_jobs", *ECHO, stdin=TTYInput("\n"))  # the default is no
    assert not LLMJob.objects.exists()
    out, _ = run("enqueue_llm_jobs", *ECHO, stdin=TTYInput("yes\n"))
    assert LLMJob.objects.count() == 3 and "Created 3" in out


@pytest.mark.django_db
def test_enqueue_refuses_to_ask_without_a_terminal(tasks):
    error = fails("enqueue_llm_jobs", *ECHO, stdin=io.StringIO("y\n"))
    assert error.returncode == 2 and "stdin is not a terminal" in str(error) and "--yes" in str(error)
    assert not LLMJob.objects.exists()


@pytest.mark.django_db
def test_enqueue_with_nothing_selected(make_task):
    make_task(status=Task.Status.DONE)
    out, _ = run("enqueue_llm_jobs", *ECHO, stdin=io.StringIO(""))  # no question asked
    assert "No tasks selected" in out and not LLMJob.objects.exists()


@pytest.mark.django_db
def test_enqueue_creates_in_chunks_and_publishes_each_job_on_commit(
    make_task, settings, django_capture_on_commit_callbacks, django_assert_max_num_queries, monkeypatch
):
    settings.JOB_TRANSPORT = "pubsub"
    published = []  # handed to the process's background publisher
    monkeypatch.setattr(outbox.background, "submit", published.extend)
    for i in range(40):
        make_task(prompt=f"p{i}")
    # A run: one bulk insert and one publish per chunk of 7 (6 chunks), a few queries for the run.
    with django_capture_on_commit_callbacks(execute=True) as callbacks, django_assert_max_num_queries(40):
        run("enqueue_llm_jobs", *ECHO, "--yes", "--chunk-size", "7")
    assert len(callbacks) == 6
    assert LLMJob.objects.filter(run__isnull=False).count() == 40
    assert sorted(published) == sorted(LLMJob.objects.values_list("id", flat=True)) and len(published) == 40


@pytest.mark.django_db
def test_bulk_jobs_are_claimed_after_interactive_ones(make_task):
    bulk_task, review_task = make_task(), make_task()
    run("enqueue_llm_jobs", *ECHO, "--ids", str(bulk_task.pk), "--yes")
    time.sleep(0.01)
    interactive, _ = create.create_job(task=review_task, provider="echo", model="echo")
    first, second = claims.claim_next("w1", 1), claims.claim_next("w1", 1)
    assert first[0].id == interactive.pk and second[0].task_id == bulk_task.pk


@pytest.mark.django_db
def test_enqueue_is_fast_for_thousands_of_tasks(make_task):
    Task.objects.bulk_create([Task(source="bulk", external_id=f"b{i}", prompt=f"prompt {i}") for i in range(2000)])
    started = time.monotonic()
    out, _ = run("enqueue_llm_jobs", *ECHO, "--yes")
    elapsed = time.monotonic() - started
    assert "Created 2000 bulk job(s)" in out
    assert LLMJob.objects.count() == 2000
    # About 2 s alone; the bound only catches a per-job pathology (speed figures belong in bench/).
    assert elapsed < 60, f"{elapsed:.1f} s for 2000 jobs"


@pytest.mark.django_db(transaction=True)
def test_enqueue_as_a_real_process(make_task):
    for i in range(3):
        make_task(prompt=f"p{i}")
    refused = manage("enqueue_llm_jobs", *ECHO)  # stdin is /dev/null: not a terminal
    assert refused.returncode == 2, refused.stderr
    assert "stdin is not a terminal" in refused.stderr and "--yes" in refused.stderr
    assert not LLMJob.objects.exists()

    bad = manage("enqueue_llm_jobs", "--provider", "echo", "--model", "nope", "--yes")
    assert bad.returncode == 2 and "unknown model" in bad.stderr

    done = manage("enqueue_llm_jobs", *ECHO, "--yes")
    assert done.returncode == 0, done.stderr
    assert "Created 3 bulk job(s)" in done.stdout
    assert LLMJob.objects.filter(priority=LLMJob.Priority.BULK, published_at__isnull=False).count() == 3


# --- create_reviewer --------------------------------------------------------------------


def reviewers():
    return Group.objects.get(name="reviewers")


@pytest.mark.django_db
def test_create_reviewer_generates_a_password_shown_once(django_user_model):
    out, _ = run("create_reviewer", "bob")
    user = django_user_model.objects.get(username="bob")
    password = out.split("Password (shown once, store it now): ")[1].strip()
    assert len(password) >= 16 and user.check_password(password)
    assert reviewers() in user.groups.all() and user.is_active and not user.is_staff
    assert user.has_perm("eval.review_task")
    assert "Created reviewer 'bob'" in out


@pytest.mark.django_db
def test_create_reviewer_staff_and_password_from_stdin(django_user_model):
    out, _ = run("create_reviewer", "carol", "--staff", "--password-stdin", stdin=io.StringIO("s3cret-Horse-battery\n"))
    user = django_user_model.objects.get(username="carol")
    assert user.is_staff and user.check_password("s3cret-Horse-battery")
    assert "s3cret" not in out and "Password set from stdin" in out and "staff reviewer" in out


@pytest.mark.django_db
def test_create_reviewer_updates_an_existing_user(django_user_model):
    user = django_user_model.objects.create_user("dave", password="old-Pass-w0rd-xyz", is_active=False)
    out, _ = run("create_reviewer", "dave")
    user.refresh_from_db()
    assert "Updated reviewer 'dave'" in out and "Password unchanged" in out
    assert user.check_password("old-Pass-w0rd-xyz") and user.is_active and reviewers() in user.groups.all()

    out, _ = run("create_reviewer", "dave", "--reset-password")
    new_password = out.split("store it now): ")[1].strip()
    user.refresh_from_db()
    assert user.check_password(new_password) and not user.check_password("old-Pass-w0rd-xyz")

    run("create_reviewer", "dave", "--staff", "--password-stdin", stdin=io.StringIO("another-Long-pass-42"))
    user.refresh_from_db()
    assert user.is_staff and user.check_password("another-Long-pass-42")
    assert user.groups.filter(name="reviewers").count() == 1


@pytest.mark.django_db
def test_create_reviewer_errors(django_user_model):
    error = fails("create_reviewer", "erin", "--password-stdin", stdin=io.StringIO(""))
    assert error.returncode == 2 and "no password" in str(error)
    error = fails("create_reviewer", "bad name!")
    assert error.returncode == 2 and "invalid username" in str(error)
    error = fails("create_reviewer", "erin", "--password-stdin", "--reset-password", stdin=io.StringIO("x\n"))
    assert error.returncode == 2
    error = fails("create_reviewer", "erin", "--password-stdin", stdin=io.StringIO("123\n"))
    assert error.returncode == 1 and "password rejected" in str(error)
    assert not django_user_model.objects.filter(username="erin").exists()


@pytest.mark.django_db
def test_create_reviewer_recreates_a_deleted_reviewers_group(django_user_model):
    reviewers().delete()
    run("create_reviewer", "gina")
    assert django_user_model.objects.get(username="gina").has_perm("eval.review_task")


# --- jobs ----------------------------------------------------------------------------------


def queue(task, **options):
    job, _ = create.create_job(task=task, provider="echo", model="echo", **options)
    return job


def running(task):
    job = queue(task)
    assert claims.claim(job.pk, "worker-1").job is not None
    return LLMJob.objects.get(pk=job.pk)


def failed(task):
    job = running(task)
    endings.fail(job.pk, "worker-1", job.attempts, code="auth", message="bad key")
    return LLMJob.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_jobs_list_table_and_filters(make_task):
    one, two = make_task(), make_task()
    first, second = queue(one), queue(two, priority=LLMJob.Priority.BULK)
    done = failed(make_task())
    out, _ = run("jobs", "list")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "STATUS", "PRIORITY", "TASK"]
    assert str(done.pk) in lines[1]  # newest first
    assert all(str(job.pk) in out for job in (first, second, done))
    assert "bulk" in out and "interactive" in out and "echo/echo" in out

    out, _ = run("jobs", "list", "--status", "failed")
    assert str(done.pk) in out and str(first.pk) not in out
    out, _ = run("jobs", "list", "--status", "failed", "--status", "queued")
    assert len(out.splitlines()) == 4
    out, _ = run("jobs", "list", "--task", str(two.pk))
    assert str(second.pk) in out and str(first.pk) not in out
    out, _ = run("jobs", "list", "--limit", "1")
    assert len(out.splitlines()) == 2
    out, _ = run("jobs", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [str(done.pk), str(second.pk), str(first.pk)]
    assert rows[0]["status"] == "failed" and rows[0]["error_code"] == "auth" and rows[1]["priority"] == "bulk"
    out, _ = run("jobs", "list", "--task", "999999")
    assert out.strip() == "No jobs."
    assert fails("jobs", "list", "--limit", "0").returncode == 2


@pytest.mark.django_db
def test_jobs_show(task, reviewer):
    job = queue(task, params={"max_tokens": 9, "system": "be brief"}, created_by=reviewer)
    out, _ = run("jobs", "show", str(job.pk))
    assert str(job.pk) in out and "alice" in out and '"system": "be brief"' in out
    for name in ("status", "priority", "attempts", "available_at", "published_at", "version", "output"):
        assert any(line.startswith(name) for line in out.splitlines()), name

    out, _ = run("jobs", "show", str(job.pk).upper(), "--json")
    data = json.loads(out)
    columns = {f.name for f in LLMJob._meta.concrete_fields}
    assert columns <= set(data)
    assert data["id"] == str(job.pk) and data["task"] == task.pk and data["created_by"] == "alice"
    assert data["params"] == {"max_tokens": 9, "system": "be brief"} and data["status"] == "queued"
    assert data["retry_of"] is None and data["priority_name"] == "interactive"


@pytest.mark.django_db
def test_jobs_cancel(make_task):
    queued = queue(make_task())
    out, _ = run("jobs", "cancel", str(queued.pk))
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED and queued.message == "Cancelled by cli"
    assert f"{queued.pk} cancelled" in out

    live = running(make_task())
    out, _ = run("jobs", "cancel", str(live.pk))
    live.refresh_from_db()
    assert live.status == JobStatus.RUNNING and live.cancel_requested and live.cancel_requested_by == "cli"
    assert f"{live.pk} running" in out

    error = fails("jobs", "cancel", str(queued.pk))
    assert error.returncode == 1 and "already cancelled" in str(error)


@pytest.mark.django_db
def test_jobs_retry(make_task):
    broken = failed(make_task())
    out, _ = run("jobs", "retry", str(broken.pk))
    new_job = LLMJob.objects.get(retry_of=broken)
    assert new_job.status == JobStatus.QUEUED and out.startswith(str(new_job.pk))
    broken.refresh_from_db()
    assert broken.status == JobStatus.FAILED  # terminal jobs never change

    error = fails("jobs", "retry", str(new_job.pk))
    assert error.returncode == 1 and "only failed or cancelled" in str(error)


@pytest.mark.django_db
def test_jobs_requeue(make_task):
    live = running(make_task())
    assert live.attempts == 1
    out, _ = run("jobs", "requeue", str(live.pk))
    live.refresh_from_db()
    assert live.status == JobStatus.QUEUED and live.attempts == 0 and live.worker_id == ""
    assert f"{live.pk} queued" in out
    run("jobs", "requeue", str(live.pk))  # a queued job too
    broken = failed(make_task())
    error = fails("jobs", "requeue", str(broken.pk))
    assert error.returncode == 1 and "queued or running" in str(error)
    broken.refresh_from_db()
    assert broken.status == JobStatus.FAILED


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["show", "cancel", "retry", "requeue"])
def test_jobs_unknown_and_malformed_ids(action):
    error = fails("jobs", action, "00000000-0000-0000-0000-000000000000")
    assert error.returncode == 1 and "no job" in str(error)
    error = fails("jobs", action, "not-a-uuid")
    assert error.returncode == 2 and "not a job id" in str(error)


@pytest.mark.django_db(transaction=True)
def test_jobs_exit_codes_as_a_real_process(task):
    job = queue(task)
    shown = manage("jobs", "show", str(job.pk), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == str(job.pk)
    assert manage("jobs").returncode == 2  # no action
    assert manage("jobs", "list", "--status", "bogus").returncode == 2
    malformed = manage("jobs", "cancel", "nope")
    assert malformed.returncode == 2 and "not a job id" in malformed.stderr
    unknown = manage("jobs", "cancel", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and "no job" in unknown.stderr
    assert manage("jobs", "cancel", str(job.pk)).returncode == 0
    conflict = manage("jobs", "cancel", str(job.pk))
    assert conflict.returncode == 1 and "already cancelled" in conflict.stderr
    created = manage("create_reviewer", "frank", "--password-stdin", input="pass-Word-for-frank\n")
    assert created.returncode == 0, created.stderr
    assert manage("create_reviewer", "frank", "--password-stdin", input="").returncode == 2
