"""The worker end to end on the db transport: real processes, real signals."""

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import IntegrityError, OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eval.jobs import claims, create, endings, transitions
from eval.models import JobStatus, LLMJob, WorkerHeartbeat
from eval.worker.database import Database
from eval.worker.service import serve
from eval.worker.writer import Writer
from tests.conftest import test_database_url
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)

WORDS = " ".join(f"w{i}" for i in range(60))


def queue(task, **params):
    job, _ = create.create_job(task=task, provider="echo", model="echo", params=params or None)
    return job


def row(job):
    return LLMJob.objects.get(pk=job.pk)


def test_it_runs_queued_jobs_to_success(make_task, fast_jobs):
    jobs = [queue(make_task(prompt=f"hello {i} world")) for i in range(5)]
    executor = asyncio.run(serve(transport="db", max_jobs=5, concurrency=3))
    for i, job in enumerate(jobs):
        done = row(job)
        assert done.status == JobStatus.SUCCEEDED, done.message
        assert (done.output, done.output_tokens, done.progress, done.attempts) == (f"hello {i} world", 3, 100, 1)
        assert done.stop_reason == "end_turn" and done.cost_usd == 0 and done.finished_at
    beat = WorkerHeartbeat.objects.get(worker_id=executor.worker_id)
    assert (beat.jobs_done, beat.jobs_failed, beat.in_flight) == (5, 0, 0) and beat.stopped_at


def test_a_one_off_drain_leaves_no_worker_on_the_dashboard(task, fast_jobs):
    """load_demo and scripts drain with --once: no "offline worker" row is left behind."""
    queue(task)
    executor = asyncio.run(serve(transport="db", once=True))
    assert row(LLMJob.objects.get()).status == JobStatus.SUCCEEDED
    assert not WorkerHeartbeat.objects.filter(worker_id=executor.worker_id).exists()


def test_max_tokens_stops_the_stream(task, fast_jobs):
    job = queue(task, max_tokens=2)
    asyncio.run(serve(once=True))
    done = row(job)
    assert (done.output, done.stop_reason, done.status) == ("one two ", "max_tokens", JobStatus.SUCCEEDED)


def test_partial_output_and_progress_grow_while_streaming(make_task, fast_jobs, worker_thread):
    fast_jobs.ECHO_CHUNK_DELAY_MS = 20
    job = queue(make_task(prompt=WORDS), max_tokens=60)
    worker = worker_thread()
    seen = []

    def partial():
        current = row(job)
        if current.status == JobStatus.RUNNING and current.output:
            seen.append((current.progress, current.output, current.message))
        return len(seen) >= 3 or current.status == JobStatus.SUCCEEDED

    wait_for(partial, message="partial output")
    wait_for(lambda: row(job).status == JobStatus.SUCCEEDED, message="success")
    worker.stop()
    assert seen, "never saw the job running with partial output"
    for progress, output, message in seen:
        assert WORDS.startswith(output) and 0 < progress < 100
        assert message.startswith("Generating: ")
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
    assert row(job).progress == 100


def test_progress_is_written_about_once_a_second_whatever_the_token_rate(make_task, settings, worker_thread):
    settings.ECHO_CHUNK_DELAY_MS = 10  # 100 tokens a second for 1.2 s
    settings.WORKER_FLUSH_INTERVAL_MS = 1000
    job = queue(make_task(prompt=" ".join(["tok"] * 120)), max_tokens=200)
    worker = worker_thread()
    wait_for(lambda: row(job).status == JobStatus.SUCCEEDED, message="success")
    worker.stop()
    # created (1) + claim (1) + at most ~2 progress writes + success (1)
    assert row(job).version <= 5


def test_cancel_stops_a_running_stream(make_task, fast_jobs, worker_thread):
    """The worker's flush picks up the request and stops the stream part way
    (how fast, bench/worker.py measures: cancel p99, DESIGN's 2 s)."""
    fast_jobs.ECHO_CHUNK_DELAY_MS = 50
    fast_jobs.WORKER_FLUSH_INTERVAL_MS = 1000
    long_prompt = " ".join([WORDS] * 40)  # ~20 s of streaming: a slow box cannot finish it first
    job = queue(make_task(prompt=long_prompt))
    worker = worker_thread()
    wait_for(lambda: row(job).status == JobStatus.RUNNING, message="running")
    time.sleep(0.3)
    transitions.request_cancel(job.pk, by="alice")
    wait_for(lambda: row(job).status == JobStatus.CANCELLED, timeout=15, message="cancelled")
    worker.stop()
    done = row(job)
    assert done.message == "Cancelled by alice" and long_prompt.startswith(done.output) and done.output != long_prompt


def test_a_whole_job_timeout_fails_the_job(task, fast_jobs, make_task):
    fast_jobs.ECHO_CHUNK_DELAY_MS = 100
    fast_jobs.JOB_TIMEOUT_SECONDS = 0.5
    job = queue(make_task(prompt=WORDS))
    asyncio.run(serve(once=True))
    done = row(job)
    assert (done.status, done.error_code) == (JobStatus.FAILED, "timed_out")
    assert "JOB_TIMEOUT_SECONDS" in done.error_message


def test_max_jobs_exits_after_n_jobs(make_task, fast_jobs):
    jobs = [queue(make_task()) for _ in range(4)]
    asyncio.run(serve(max_jobs=2, concurrency=1))
    assert sorted(row(j).status for j in jobs) == ["queued", "queued", "succeeded", "succeeded"]


def test_a_lost_lease_abandons_the_attempt_without_writing(make_task, fast_jobs, worker_thread):
    fast_jobs.ECHO_CHUNK_DELAY_MS = 50
    job = queue(make_task(prompt=WORDS))
    worker = worker_thread()
    wait_for(lambda: row(job).status == JobStatus.RUNNING, message="running")
    # Someone else now holds the job (as after a lease expiry and a new claim).
    LLMJob.objects.filter(pk=job.pk).update(worker_id="other-worker")
    wait_for(lambda: not worker.executor or not worker.executor.running, timeout=15, message="abandon")
    time.sleep(0.3)
    worker.stop()
    current = row(job)
    assert current.status == JobStatus.RUNNING and current.worker_id == "other-worker"


# --- the writer: final writes that arrive together -----------------------------------------------


class StatementLog(Database):
    """The worker's real Database, keeping the SQL each call ran."""

    def __init__(self):
        super().__init__(1, retry_for_seconds=1)
        self.statements = []

    def _run(self, fn, *args, **kwargs):
        with CaptureQueriesContext(connection) as captured:
            try:
                return super()._run(fn, *args, **kwargs)
            finally:
                self.statements += [query["sql"] for query in captured.captured_queries]


def write_together(worker, writes):
    """Submit ``writes`` at once (as attempts ending together); their results in order."""
    database = StatementLog()

    async def main():
        writer = Writer(database, worker)
        results = await asyncio.gather(*(writer.submit(w) for w in writes), return_exceptions=True)
        return results, writer.commits

    try:
        results, commits = asyncio.run(main())
    finally:
        database.close()
    return results, commits, database.statements


def claim_jobs(make_task, worker, count):
    jobs = [queue(make_task(prompt=f"job {i}")) for i in range(count)]
    claimed = {job.id: job for job in claims.claim_next(worker, count)}
    return [claimed[job.pk] for job in jobs]


def stored(claimed):
    return LLMJob.objects.get(pk=claimed.id)


def success(job, output):
    return endings.Success(job.id, job.attempt, output=output, stop_reason="end_turn", output_tokens=2)


def test_the_writer_gives_successes_arriving_together_one_statement(make_task):
    a, b, c, d = claim_jobs(make_task, "w-writer", 4)
    not_held = queue(make_task(prompt="still queued"))
    writes = [
        success(a, "out a"),
        success(b, "out b"),
        functools.partial(endings.fail, c.id, "w-writer", c.attempt, code="bad_request", message="nope"),
        success(d, "out d"),
        endings.Success(not_held.pk, 1, output="stale"),
    ]
    results, commits, statements = write_together("w-writer", writes)
    assert results == [True, True, True, True, False]  # each caller gets its own answer
    assert commits == 1
    assert sum("j.id = v.job_id" in sql for sql in statements) == 1  # one succeed statement for all successes
    assert [(stored(j).status, stored(j).output) for j in (a, b, d)] == [
        (JobStatus.SUCCEEDED, "out a"),
        (JobStatus.SUCCEEDED, "out b"),
        (JobStatus.SUCCEEDED, "out d"),
    ]
    assert (stored(c).status, stored(c).error_message) == (JobStatus.FAILED, "nope")
    assert row(not_held).status == JobStatus.QUEUED and row(not_held).output == ""


def test_a_database_error_in_one_final_write_does_not_lose_the_others(make_task):
    a, b, c = claim_jobs(make_task, "w-writer", 3)
    writes = [
        success(a, "out a"),
        functools.partial(endings.fail, b.id, "w-writer", b.attempt, code=None),  # NOT NULL: IntegrityError
        functools.partial(endings.hand_back, c.id, "w-writer", c.attempt),
    ]
    results, commits, _ = write_together("w-writer", writes)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], IntegrityError)  # raised to its own caller only
    assert (stored(a).status, stored(a).output) == (JobStatus.SUCCEEDED, "out a")
    assert stored(b).status == JobStatus.RUNNING  # untouched: its lease will expire and it runs again
    assert (stored(c).status, stored(c).attempts) == (JobStatus.QUEUED, 0)


# --- real processes and signals -----------------------------------------------------------------


def spawn_worker(**env):
    environment = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "ECHO_CHUNK_DELAY_MS": "100",
        "JOB_LEASE_SECONDS": "1",
        "WORKER_FLUSH_INTERVAL_MS": "200",
        "WORKER_POLL_INTERVAL_MS": "50",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "0.5",
        "LOG_FORMAT": "json",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "process_llm_jobs", "--transport", "db"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_hands_back_what_cannot_finish_and_exits_0(make_task):
    job = queue(make_task(prompt=WORDS))
    process = spawn_worker()
    try:
        wait_for(lambda: row(job).output, timeout=20, message="streaming")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    finally:
        process.kill()
    output = process.stdout.read()
    assert code == 0, output
    back = row(job)
    assert (back.status, back.attempts, back.worker_id) == (JobStatus.QUEUED, 0, ""), output
    assert "handed back" in output


def test_sigterm_lets_a_short_job_finish_within_the_grace(make_task):
    job = queue(make_task(prompt="a b c d e f"))
    process = spawn_worker(WORKER_SHUTDOWN_GRACE_SECONDS="5")
    try:
        wait_for(lambda: row(job).status == JobStatus.RUNNING, timeout=20, message="running")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert row(job).status == JobStatus.SUCCEEDED


def test_a_worker_killed_mid_stream_loses_nothing(make_task, fast_jobs):
    job = queue(make_task(prompt=" ".join(["x"] * 30)))
    process = spawn_worker()
    try:
        wait_for(lambda: row(job).output, timeout=20, message="streaming")
        process.kill()  # SIGKILL: no hand-back, no final write
        process.wait(timeout=10)
    finally:
        process.kill()
    assert row(job).status == JobStatus.RUNNING
    wait_for(lambda: transitions.expire_leases() == (1, 0), timeout=15, message="lease expiry")
    assert row(job).status == JobStatus.QUEUED
    asyncio.run(serve(once=True))
    done = row(job)
    assert (done.status, done.attempts, done.output) == (JobStatus.SUCCEEDED, 2, " ".join(["x"] * 30))
    assert done.finished_at > done.created_at and done.finished_at <= timezone.now()


def test_the_worker_survives_its_database_connections_being_cut(make_task):
    """As after a PostgreSQL restart: every connection of the worker is killed."""

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server connections to cut")
    first = queue(make_task(prompt="before the cut"))
    process = spawn_worker(DATABASE_APPLICATION_NAME="test-worker-cut", ECHO_CHUNK_DELAY_MS="5")
    try:
        wait_for(lambda: row(first).status == JobStatus.SUCCEEDED, timeout=20, message="first job")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                ["test-worker-cut"],
            )
            assert cursor.fetchone()[0] >= 2  # the claim/write pool and the LISTEN connection
        second = queue(make_task(prompt="after the cut"))
        wait_for(lambda: row(second).status == JobStatus.SUCCEEDED, timeout=20, message="job after the cut")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert row(second).output == "after the cut"


# --- stopping while the database is gone ------------------------------------------------------------


def test_a_stopping_worker_gives_up_on_a_lost_database_instead_of_retrying_for_minutes():
    """A SIGTERM while the database is gone: each call stops retrying at the stop's
    deadline, not after the two-minute retry window (the worker would seem to ignore SIGTERM)."""

    attempts = []

    def database_gone():
        attempts.append(1)
        raise OperationalError('database "gone" does not exist')

    database = Database(1, retry_for_seconds=120)
    try:
        database.stop_retrying_after(0)  # the deadline has passed: no retry at all
        with pytest.raises(OperationalError):
            asyncio.run(database.call(database_gone))
        assert len(attempts) == 1

        running = Database(1, retry_for_seconds=120)
        running.stop_retrying_after(0.5)  # a stop mid-retry still ends it soon
        with pytest.raises(OperationalError):
            asyncio.run(running.call(database_gone))
        assert len(attempts) > 2  # it did retry until then
    finally:
        database.close()
