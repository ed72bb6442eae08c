"""Job facts with one owner each: which jobs are live, which outputs can be
judged, the starting values of every new queued job (interactive, bulk, judge),
the job JSON's ``terminal`` flag, and the heartbeat interval against the
online threshold."""

import re
from pathlib import Path

import pytest
from django.utils import timezone

from eval.evaluation.reviews.rubrics import default_rubric
from eval.evaluation.runs import judges, report
from eval.jobs import create, heartbeats, states
from eval.models import JobStatus, LLMJob, Run, WorkerHeartbeat
from eval.worker import flusher

pytestmark = pytest.mark.django_db


def job_with(task, status, **fields):
    job, _ = create.create_job(task=task, provider="echo", model="echo")
    LLMJob.objects.filter(pk=job.pk).update(status=status, **fields)
    return job


def test_it_counts_queued_and_running_jobs_as_live(make_task):
    task = make_task()
    jobs = {status: job_with(task, status).pk for status in JobStatus.values}
    assert {states.QUEUED, states.RUNNING} == states.LIVE
    assert set(LLMJob.objects.live().values_list("pk", flat=True)) == {jobs["queued"], jobs["running"]}
    assert set(JobStatus.values) - states.LIVE == states.TERMINAL


def test_it_judges_only_succeeded_visible_generate_outputs(make_task):
    task = make_task()
    good = job_with(task, JobStatus.SUCCEEDED, output="yes")
    job_with(task, JobStatus.SUCCEEDED, output="hidden", hidden=True)
    job_with(task, JobStatus.SUCCEEDED, output="a judge's", kind=LLMJob.Kind.JUDGE)
    job_with(task, JobStatus.FAILED)
    job_with(task, JobStatus.RUNNING)
    assert list(LLMJob.objects.judgeable().values_list("pk", flat=True)) == [good.pk]


def _defaults(job):
    return (job.status, job.max_attempts, job.message, job.available_at is not None, job.published_at is not None)


def test_every_new_job_starts_queued_with_the_same_defaults(make_task, settings, reviewer):
    settings.JOB_MAX_ATTEMPTS = 4
    settings.JOB_TRANSPORT = "db"  # the db transport stamps published_at as it queues
    task = make_task()
    interactive, _ = create.create_job(task=task, provider="echo", model="echo")
    generate = Run.objects.create(name="gen", provider="echo", model="echo", status=Run.Status.RUNNING)
    create.create_many(tasks=[(task.pk, task.prompt_hash)], provider="echo", model="echo", params={}, run=generate)
    bulk = LLMJob.objects.get(run=generate)
    started = {"echo": [interactive, bulk]}
    for job in started["echo"]:
        job.refresh_from_db()
    LLMJob.objects.filter(pk=bulk.pk).update(status=JobStatus.SUCCEEDED, output="the answer")
    judge = Run.objects.create(
        name="judge",
        kind=Run.Kind.JUDGE,
        provider="echo",
        model="echo-judge",
        params={"max_tokens": 64},
        rubric=default_rubric(),
        score_of=generate,
        status=Run.Status.RUNNING,
        created_by=reviewer,
    )
    assert judges.create_judge_jobs(judge) == 1
    judged = LLMJob.objects.get(run=judge)
    started["echo-judge"] = [judged]
    for model, jobs in started.items():
        for job in jobs:
            assert _defaults(job) == ("queued", 4, f"Queued for {model}", True, True)
            assert job.prompt_hash == task.prompt_hash and job.available_at <= timezone.now()
    assert (judged.kind, judged.priority, judged.judged_a_id, judged.created_by) == (
        LLMJob.Kind.JUDGE,
        LLMJob.Priority.BULK,
        bulk.pk,
        reviewer,
    )


def test_the_online_threshold_is_missed_beats_of_the_interval_the_worker_beats_at():
    assert heartbeats.ONLINE_SECONDS == heartbeats.INTERVAL_SECONDS * heartbeats.MISSED_BEATS
    assert not hasattr(flusher, "HEARTBEAT_SECONDS")  # the flusher asks heartbeats, not a copy


@pytest.mark.django_db
def test_a_late_beat_never_overwrites_the_stopped_one():
    """A flush still on a database thread when the worker stopped wrote its older counts
    over the final heartbeat (CI: 3 done and 2 in flight, stopped, after 5 done)."""
    heartbeats.beat("w1", jobs_done=0, jobs_failed=0, in_flight=0, first=("db", timezone.now()))
    heartbeats.beat("w1", jobs_done=5, jobs_failed=0, in_flight=0, stopped=True)
    heartbeats.beat("w1", jobs_done=3, jobs_failed=0, in_flight=2)  # the late flush
    beat = WorkerHeartbeat.objects.get(worker_id="w1")
    assert (beat.jobs_done, beat.in_flight) == (5, 0) and beat.stopped_at is not None


def test_a_runs_json_counts_live_and_ended_jobs_for_its_page():
    counts = {"queued": 2, "running": 1, "succeeded": 4, "failed": 2, "cancelled": 1}
    assert report.totals(counts) == {"jobs": 10, "live": 3, "ended": 7}
    assert report.progress(counts) == 70


def test_the_pages_scripts_read_terminal_from_the_job_json_not_a_copy_of_the_states():
    static = Path(__file__).resolve().parent.parent / "eval" / "static" / "eval"
    listed = r"""\[\s*["']succeeded["']\s*,\s*["']failed["']"""
    ended = re.compile(r"""job\.status\s*===\s*["'](failed|cancelled)["']|""" + listed)
    for script in static.glob("*.js"):
        assert not ended.search(script.read_text()), script.name
