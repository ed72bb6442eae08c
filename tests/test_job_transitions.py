"""Every job transition and its refusals (eval/jobs/: create, claims, transitions, batch)."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from eval.jobs import backoff, batch, claims, create, endings, transitions
from eval.jobs.errors import IdempotencyConflict, InvalidJob, JobConflict
from eval.models import JobStatus, LLMJob


def make_job(task, **kw):
    kw.setdefault("provider", "echo")
    kw.setdefault("model", "echo")
    job, created = create.create_job(task=task, **kw)
    assert created
    return job


def claim_one(worker="w1"):
    claimed = claims.claim_next(worker, 1)
    assert len(claimed) == 1
    return claimed[0]


def status_of(job):
    return LLMJob.objects.get(pk=job.pk).status


# --- creation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"provider": "nope"}, "provider"),
        ({"provider": ""}, "provider"),
        ({"model": "gpt-x"}, "model"),
        ({"params": {"max_tokens": 0}}, "params.max_tokens"),
        ({"params": {"max_tokens": 10**6}}, "params.max_tokens"),
        ({"params": {"max_tokens": "12"}}, "params.max_tokens"),
        ({"params": {"temperature": 9}}, "params.temperature"),
        ({"params": {"top_k": 3}}, "params"),
        ({"params": ["x"]}, "params"),
        ({"params": {"system": 5}}, "params.system"),
    ],
)
def test_it_refuses_bad_requests_and_queues_nothing(task, kwargs, field):
    with pytest.raises(InvalidJob) as caught:
        create.create_job(task=task, **{"provider": "echo", "model": "echo", **kwargs})
    assert caught.value.field == field
    assert LLMJob.objects.count() == 0


def test_it_refuses_empty_and_oversized_prompts(make_task, settings):
    with pytest.raises(InvalidJob, match="empty"):
        create.create_job(task=make_task(prompt="   "), provider="echo", model="echo")
    settings.MAX_PROMPT_CHARS = 10
    with pytest.raises(InvalidJob, match="MAX_PROMPT_CHARS"):
        create.create_job(task=make_task(prompt="x" * 11), provider="echo", model="echo")
    assert LLMJob.objects.count() == 0


def test_it_queues_a_valid_job_with_defaults(task):
    job = make_job(task, params={"temperature": 0.5})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.params == {"max_tokens": 1024, "temperature": 0.5}
    assert job.version == 1 and job.attempts == 0
    assert job.published_at is not None  # db transport: published by committing


def test_it_replays_an_idempotent_request_and_refuses_another_body(task, reviewer):
    first, created = create.create_job(
        task=task, provider="echo", model="echo", created_by=reviewer, idempotency_key="k1"
    )
    again, created_again = create.create_job(
        task=task, provider="echo", model="echo", created_by=reviewer, idempotency_key="k1"
    )
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(IdempotencyConflict):
        create.create_job(
            task=task,
            provider="echo",
            model="echo",
            params={"max_tokens": 5},
            created_by=reviewer,
            idempotency_key="k1",
        )
    assert LLMJob.objects.count() == 1


def test_an_idempotency_key_expires_after_a_day(task, reviewer):
    first, _ = create.create_job(task=task, provider="echo", model="echo", created_by=reviewer, idempotency_key="k1")
    LLMJob.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=25))
    second, created = create.create_job(
        task=task, provider="echo", model="echo", created_by=reviewer, idempotency_key="k1"
    )
    assert created and second.pk != first.pk


# --- claim and the fence ----------------------------------------------------------------


def test_claim_moves_queued_to_running_and_counts_the_attempt(task):
    job = make_job(task)
    claimed = claim_one("w1")
    row = LLMJob.objects.get(pk=job.pk)
    assert (claimed.id, claimed.attempt, claimed.prompt) == (job.pk, 1, task.prompt)
    assert row.status == JobStatus.RUNNING and row.worker_id == "w1" and row.attempts == 1
    assert row.lease_expires_at > timezone.now() and row.version == 2
    assert row.message == "Waiting for echo"
    assert claims.claim_next("w2", 5) == []


def test_claim_serves_interactive_before_bulk(make_task):
    bulk = make_job(make_task(), priority=LLMJob.Priority.BULK)
    interactive = make_job(make_task())
    assert claim_one().id == interactive.pk
    assert claim_one().id == bulk.pk


def test_claim_by_id_explains_why_not(task):
    job = make_job(task)
    assert claims.claim(job.pk, "w1").job.id == job.pk
    assert claims.claim(job.pk, "w2").reason == "running"

    assert claims.claim(uuid.uuid4(), "w2").reason == "missing"
    endings.succeed_one(job.pk, "w1", 1, output="x", stop_reason="end_turn")
    assert claims.claim(job.pk, "w2").reason == "terminal"


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_claim_each_job_once(make_task):
    jobs = {make_job(make_task()).pk for _ in range(20)}
    claimed = {}
    barrier = threading.Barrier(4)

    def worker(name):
        barrier.wait()
        mine = []
        while batch := claims.claim_next(name, 3):
            mine += [job.id for job in batch]
        claimed[name] = mine
        connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [job_id for ids in claimed.values() for job_id in ids]
    assert sorted(map(str, everything)) == sorted(map(str, jobs))  # each exactly once
    assert LLMJob.objects.filter(status=JobStatus.RUNNING, attempts=1).count() == 20


def test_a_zombie_worker_cannot_touch_the_next_attempt(task, settings):
    job = make_job(task)
    first = claim_one("zombie")
    LLMJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert transitions.expire_leases() == (1, 0)
    second = claim_one("fresh")
    assert second.attempt == 2
    update = batch.ProgressUpdate(job.pk, first.attempt, 50, "zombie", "zzz", 3)
    assert batch.record_progress("zombie", [update]) == {job.pk}
    assert not endings.succeed_one(job.pk, "zombie", first.attempt, output="stale", stop_reason="end_turn")
    assert not endings.fail(job.pk, "zombie", first.attempt, code="server_error")
    # Even the same worker id cannot write with an old attempt number.
    assert not endings.succeed_one(job.pk, "fresh", first.attempt, output="stale", stop_reason="end_turn")
    assert endings.succeed_one(job.pk, "fresh", second.attempt, output="good", stop_reason="end_turn")
    row = LLMJob.objects.get(pk=job.pk)
    assert (row.status, row.output, row.attempts) == (JobStatus.SUCCEEDED, "good", 2)


# --- running -------------------------------------------------------------------------


def test_progress_writes_partial_output_and_renews_the_lease(task):
    job = make_job(task)
    claimed = claim_one()
    before = LLMJob.objects.get(pk=job.pk)
    update = batch.ProgressUpdate(job.pk, claimed.attempt, 120, "Generating: 3 tokens", "one two three", 3)
    assert batch.record_progress("w1", [update]) == set()
    row = LLMJob.objects.get(pk=job.pk)
    assert row.progress == 99  # held below 100 until success
    assert row.output == "one two three" and row.output_tokens == 3
    assert row.lease_expires_at >= before.lease_expires_at and row.version == before.version + 1
    assert batch.renew_leases("w1", [(job.pk, claimed.attempt)]) == set()
    assert LLMJob.objects.get(pk=job.pk).version == row.version  # renewal is not a visible change


def test_succeed_records_exactly_one_final_result(task):
    job = make_job(task)
    claimed = claim_one()
    assert endings.succeed_one(
        job.pk, "w1", claimed.attempt, output="hello", stop_reason="end_turn", input_tokens=4, output_tokens=1, cost=0
    )
    assert not endings.succeed_one(job.pk, "w1", claimed.attempt, output="again", stop_reason="end_turn")
    assert not endings.fail(job.pk, "w1", claimed.attempt, code="server_error")
    with pytest.raises(JobConflict):
        transitions.request_cancel(job.pk, by="alice")
    row = LLMJob.objects.get(pk=job.pk)
    assert (row.status, row.progress, row.output, row.input_tokens) == ("succeeded", 100, "hello", 4)
    assert row.output_hash and row.finished_at


def test_transitions_refuse_a_job_in_the_wrong_state(task):
    job = make_job(task)
    assert not endings.succeed_one(job.pk, "w1", 0, output="x", stop_reason="end_turn")  # still queued
    assert not endings.hand_back(job.pk, "w1", 0)
    assert status_of(job) == JobStatus.QUEUED


def test_a_transient_error_is_retried_after_a_backoff_then_fails(task, settings):
    settings.JOB_MAX_ATTEMPTS = 2
    settings.JOB_RETRY_MAX_DELAY_SECONDS = 8
    job = make_job(task)
    claimed = claim_one()
    status, delay = endings.retry_later(
        job.pk, "w1", claimed.attempt, code="rate_limited", retry_after=30, max_attempts=2
    )
    row = LLMJob.objects.get(pk=job.pk)
    assert status == "queued" and delay == 8  # Retry-After capped
    assert row.available_at > timezone.now() + timedelta(seconds=7)
    assert row.message == "Rate limited; retrying in 8 s (attempt 2 of 2)"
    assert claims.claim_next("w1", 1) == []  # not before available_at
    LLMJob.objects.filter(pk=job.pk).update(available_at=timezone.now())
    second = claim_one()
    status, _ = endings.retry_later(job.pk, "w1", second.attempt, code="overloaded", max_attempts=2)
    row = LLMJob.objects.get(pk=job.pk)
    assert status == "failed" and row.status == JobStatus.FAILED and row.error_code == "overloaded"


def test_backoff_grows_with_jitter_and_is_capped(settings):
    settings.JOB_RETRY_BASE_DELAY_SECONDS = 2
    settings.JOB_RETRY_MAX_DELAY_SECONDS = 10
    delays = [backoff.retry_delay(3) for _ in range(50)]
    assert all(4 <= d <= 8 for d in delays) and len(set(delays)) > 1
    assert all(d <= 10 for d in (backoff.retry_delay(9) for _ in range(20)))


def test_hand_back_does_not_consume_the_attempt(task):
    job = make_job(task)
    claimed = claim_one()
    assert endings.hand_back(job.pk, "w1", claimed.attempt)
    row = LLMJob.objects.get(pk=job.pk)
    assert (row.status, row.attempts, row.worker_id) == (JobStatus.QUEUED, 0, "")
    assert claim_one("w2").attempt == 1


def test_expired_leases_requeue_or_fail_when_attempts_are_used_up(make_task, settings):
    settings.JOB_MAX_ATTEMPTS = 1
    last = make_job(make_task())
    settings.JOB_MAX_ATTEMPTS = 3
    again = make_job(make_task())
    claims.claim_next("w1", 2)
    LLMJob.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert transitions.expire_leases() == (1, 1)
    assert LLMJob.objects.get(pk=last.pk).error_code == "lease_expired"
    assert LLMJob.objects.get(pk=last.pk).status == JobStatus.FAILED
    requeued = LLMJob.objects.get(pk=again.pk)
    assert requeued.status == JobStatus.QUEUED and requeued.message == "Worker lost; retrying (attempt 2)"
    assert transitions.expire_leases() == (0, 0)


# --- cancel and retry ------------------------------------------------------------------------


def test_cancel_of_a_queued_job_is_immediate(task):
    job = make_job(task)
    cancelled = transitions.request_cancel(job.pk, by="alice")
    assert cancelled.status == JobStatus.CANCELLED and cancelled.message == "Cancelled by alice"
    assert claims.claim_next("w1", 1) == []


def test_cancel_of_a_running_job_asks_the_worker(task):
    job = make_job(task)
    claimed = claim_one()
    asked = transitions.request_cancel(job.pk, by="alice")
    assert asked.status == JobStatus.RUNNING and asked.cancel_requested
    assert batch.cancel_requests("w1") == {job.pk}
    assert endings.finish_cancel(job.pk, "w1", claimed.attempt, output="one two")
    row = LLMJob.objects.get(pk=job.pk)
    assert (row.status, row.message, row.output) == (JobStatus.CANCELLED, "Cancelled by alice", "one two")


def test_retry_makes_a_new_job_and_leaves_the_old_one(task, reviewer):
    job = make_job(task, created_by=reviewer)
    with pytest.raises(JobConflict):
        create.retry_job(job)
    transitions.request_cancel(job.pk, by="alice")
    job.refresh_from_db()
    new = create.retry_job(job, by_user=reviewer)
    assert new.retry_of_id == job.pk and new.status == JobStatus.QUEUED and new.pk != job.pk
    assert status_of(job) == JobStatus.CANCELLED


def test_requeue_puts_a_running_job_back_without_consuming_the_attempt(task):
    job = make_job(task)
    claim_one()
    row = transitions.requeue(job.pk)
    assert (row.status, row.attempts) == (JobStatus.QUEUED, 0)
    transitions.request_cancel(job.pk)
    with pytest.raises(JobConflict):
        transitions.requeue(job.pk)


def test_every_visible_change_bumps_the_version(task):
    job = make_job(task)
    versions = [LLMJob.objects.get(pk=job.pk).version]
    claimed = claim_one()
    versions.append(LLMJob.objects.get(pk=job.pk).version)
    batch.record_progress("w1", [batch.ProgressUpdate(job.pk, claimed.attempt, 1, "m", "o", 1)])
    versions.append(LLMJob.objects.get(pk=job.pk).version)
    endings.succeed_one(job.pk, "w1", claimed.attempt, output="o", stop_reason="end_turn")
    versions.append(LLMJob.objects.get(pk=job.pk).version)
    assert versions == sorted(set(versions))


def test_claim_many_claims_what_it_can_and_says_why_not_for_the_rest(make_task):

    fresh, other, done = (make_job(make_task()) for _ in range(3))
    claims.claim(other.pk, "elsewhere")
    transitions.request_cancel(done.pk, by="alice")
    unknown = uuid.uuid4()
    outcomes = claims.claim_many([fresh.pk, other.pk, done.pk, unknown, fresh.pk], "w1")
    assert outcomes[fresh.pk].job.attempt == 1 and outcomes[fresh.pk].job.prompt
    assert {k: o.reason for k, o in outcomes.items() if o.job is None} == {
        other.pk: "running",
        done.pk: "terminal",
        unknown: "missing",
    }
    assert LLMJob.objects.get(pk=fresh.pk).worker_id == "w1"
