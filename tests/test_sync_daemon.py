"""The daemon (eval/daemon/, ``manage.py run_daemon``, ``run_sync_daemon.py``):
a pass syncs and repairs; one active daemon at a time; SIGTERM stops it."""

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from eval.daemon import locks, loop, passes
from eval.jobs import create, repairs
from eval.models import JobStatus, LLMJob, Task, WorkerHeartbeat
from eval.sync import SourceError
from tests.conftest import test_database_url
from tests.fakes.slow_source import SlowSource

ROOT = Path(__file__).resolve().parent.parent


def expired_job(task, *, attempts=1, max_attempts=3):
    job, _ = create.create_job(task=task, provider="echo", model="echo")
    past = timezone.now() - timedelta(minutes=5)
    LLMJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        worker_id="dead-worker",
        attempts=attempts,
        max_attempts=max_attempts,
        lease_expires_at=past,
        started_at=past,
    )
    return job


def heartbeat(worker_id, age):
    seen = timezone.now() - age
    return WorkerHeartbeat.objects.create(worker_id=worker_id, hostname="h", pid=1, started_at=seen, last_seen=seen)


# --- one pass ------------------------------------------------------------------------


@pytest.mark.django_db
def test_pass_syncs_repairs_and_prunes(tmp_path, settings, task, monkeypatch):
    source = tmp_path / "daemon-set.jsonl"
    source.write_text(json.dumps({"id": "d1", "prompt": "hello"}) + "\n")
    settings.TASK_SOURCE = str(source)
    requeue = expired_job(task)
    exhausted = expired_job(task, attempts=3, max_attempts=3)
    heartbeat("old", timedelta(days=2))
    heartbeat("recent", timedelta(minutes=1))
    lost, _ = create.create_job(task=task, provider="echo", model="echo")  # its process never published it
    LLMJob.objects.filter(pk=lost.pk).update(published_at=None, updated_at=timezone.now() - timedelta(minutes=5))
    settings.JOB_TRANSPORT = "pubsub"  # the requeued job is handed to this process's publisher on commit
    republished = []
    monkeypatch.setattr(
        "eval.broker.publish",
        lambda messages, timeout=None: republished.extend(m.job_id for m in messages) or republished,
    )

    result = passes.run_pass()
    assert result.ok, result.errors
    assert (result.sync.created, result.requeued, result.failed) == (1, 1, 1)
    assert (result.republished, result.pruned, result.repair_rounds) == (1, 1, 1)
    assert republished == [lost.pk]  # not the requeued job: its own process's publisher has it
    line = result.line()
    assert "created=1" in line and "requeued=1" in line and "pruned=1" in line
    requeue.refresh_from_db()
    assert (requeue.status, requeue.error_code, requeue.worker_id) == ("queued", "lease_expired", "")
    exhausted.refresh_from_db()
    assert (exhausted.status, exhausted.error_code) == ("failed", "lease_expired")
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["recent"]
    assert Task.objects.filter(source="daemon-set", external_id="d1").exists()


@pytest.mark.django_db
def test_pass_without_source_still_repairs_and_a_failing_sync_does_not_stop_repairs(tmp_path, settings, task):
    settings.TASK_SOURCE = ""
    job = expired_job(task)
    result = passes.run_pass()
    assert result.ok and result.sync is None and result.requeued == 1
    assert "no TASK_SOURCE" in result.line()

    settings.TASK_SOURCE = str(tmp_path / "gone.jsonl")
    LLMJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker_id="w", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    result = passes.run_pass()
    assert not result.ok and "no such file" in result.errors[0]
    assert result.requeued == 1
    assert "sync: failed" in result.line()


@pytest.mark.django_db
def test_sync_step_says_whether_it_wrote(tmp_path):
    source = tmp_path / "steps.jsonl"
    source.write_text(json.dumps({"id": "s1", "prompt": "hello"}) + "\n")
    assert passes.Pass(source=str(source)).sync_tasks() is True
    assert passes.Pass(source=str(source)).sync_tasks() is False  # unchanged: nothing written
    assert passes.Pass(source="").sync_tasks() is False


def fake_repairs(monkeypatch, rounds):
    """run_repairs answers with these reports in turn, then with empty ones."""
    reports = [repairs.RepairReport(results=results, errors=errors) for results, errors in rounds]
    monkeypatch.setattr(repairs, "run_repairs", lambda **kwargs: reports.pop(0) if reports else repairs.RepairReport())


@pytest.mark.django_db
def test_repairs_go_again_while_they_do_work_within_the_pass(monkeypatch):
    fake_repairs(
        monkeypatch,
        [({"expire_leases": (500, 2), "republish": 200}, []), ({"republish": 30, "prune_heartbeats": 4}, [])],
    )
    result = passes.run_pass("", repeat_for=60)
    assert (result.requeued, result.failed, result.republished, result.pruned) == (500, 2, 230, 4)
    assert result.repair_rounds == 3  # the third found nothing to do
    assert "in 3 rounds" in result.line()

    fake_repairs(monkeypatch, [({"republish": 200}, [])])
    assert passes.run_pass("").repair_rounds == 1  # no time given: one round

    fake_repairs(monkeypatch, [({"republish": 200}, [])])
    stopping = passes.run_pass("", should_stop=lambda: True, repeat_for=60)
    assert stopping.repair_rounds == 1


@pytest.mark.django_db
def test_a_failing_repair_does_not_go_again(monkeypatch):
    fake_repairs(monkeypatch, [({"expire_leases": (3, 0)}, ["republish: RuntimeError: broker down"])] * 2)
    result = passes.run_pass("", repeat_for=60)
    assert result.repair_rounds == 1 and result.requeued == 3
    assert not result.ok and "broker down" in result.line()


def test_skipped_records_are_logged_after_the_line(tmp_path, db, caplog):
    source = tmp_path / "bad.jsonl"
    source.write_text("".join(json.dumps({"id": f"b{n}"}) + "\n" for n in range(7)))
    result = passes.run_pass(str(source))
    with caplog.at_level("INFO", logger="test.daemon"):
        result.log(logging.getLogger("test.daemon"))
    line, warning = [record.getMessage() for record in caplog.records]
    assert line.startswith("pass: sync bad: created=0") and "invalid=7" in line
    assert warning.startswith("skipped 7 invalid record(s): ") and "(and 2 more;" in warning


# --- urgent repairs never wait behind the sync ----------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.django_db
def test_expired_leases_are_repaired_before_the_sync(task, monkeypatch):
    job = expired_job(task)
    seen_by_sync = []

    def sync(source, should_stop):
        seen_by_sync.append(LLMJob.objects.get(pk=job.pk).status)
        raise SourceError("slow.example: not read within SYNC_FETCH_TIMEOUT_SECONDS=300 s")

    monkeypatch.setattr(passes, "sync_tasks", sync)
    result = passes.run_pass("http://slow.example/tasks.json")
    assert seen_by_sync == ["queued"]  # requeued before the sync began
    assert result.requeued == 1 and "SYNC_FETCH_TIMEOUT_SECONDS" in result.line()


@pytest.mark.django_db
def test_a_long_sync_runs_a_repair_round_whenever_one_is_due(task, monkeypatch):
    """A lease that expires while the sync runs is repaired within ``repair_every``
    (the daemon's interval) of the last round, not after the sync."""
    clock = FakeClock()
    statuses = []

    def sync(source, should_stop):
        job = expired_job(task)  # its worker dies while the sync runs
        clock.now += 5
        assert should_stop() is False  # not due yet: no round
        statuses.append(LLMJob.objects.get(pk=job.pk).status)
        clock.now += 5
        assert should_stop() is False  # due: a round ran, and the sync goes on
        statuses.append(LLMJob.objects.get(pk=job.pk).status)
        return None

    monkeypatch.setattr(passes, "sync_tasks", sync)
    result = passes.Pass(source="x", repair_every=10, clock=clock).run()
    assert statuses == ["running", "queued"]
    assert (result.repair_rounds, result.requeued) == (2, 1)


@pytest.mark.django_db
def test_a_slow_drip_source_fails_the_sync_at_its_deadline_and_the_pass_goes_on(task, settings):
    settings.SYNC_FETCH_TIMEOUT_SECONDS = 1
    job = expired_job(task)
    with SlowSource(every=0.1, drip_for=20) as server:
        result = passes.run_pass(server.url("/drip.json"))
    assert result.requeued == 1
    assert not result.ok and "SYNC_FETCH_TIMEOUT_SECONDS=1 s" in result.errors[0]
    assert "sync: failed" in result.line()
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.django_db
def test_the_pass_logs_a_mass_missing_refusal(tmp_path, caplog):
    source = tmp_path / "refused.jsonl"
    source.write_text("".join(json.dumps({"id": f"r{n}", "prompt": "p"}) + "\n" for n in range(3)))
    assert passes.run_pass(str(source)).ok
    source.write_text("")
    result = passes.run_pass(str(source))
    with caplog.at_level("INFO", logger="test.daemon"):
        result.log(logging.getLogger("test.daemon"))
    assert "refused to mark 3 of its 3 present tasks missing" in caplog.text
    assert not Task.objects.filter(missing_since__isnull=False).exists()


@pytest.mark.django_db
def test_once_stopping_the_pass_skips_the_steps_not_begun(monkeypatch):
    fake_repairs(monkeypatch, [])
    called = []
    monkeypatch.setattr(passes, "sync_tasks", lambda *a, **k: called.append("sync"))
    monkeypatch.setattr(passes.schedules, "fire_due", lambda: called.append("schedules") or [])
    monkeypatch.setattr(passes.runs, "finish_ended", lambda: called.append("runs") or 0)
    passes.run_pass("x")
    assert called == ["sync", "schedules", "runs"]
    called.clear()
    result = passes.run_pass("x", should_stop=lambda: True)
    assert called == [] and result.repair_rounds == 1


# --- the lock and the loop --------------------------------------------------------------


def test_file_lock_excludes_a_second_holder(tmp_path):
    first, second = locks.FileLock(tmp_path / "d.lock"), locks.FileLock(tmp_path / "d.lock")
    assert first.acquire() and first.held()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


@pytest.mark.django_db(transaction=True)
def test_postgres_advisory_lock_excludes_a_second_holder():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    first, second = locks.PostgresLock(), locks.PostgresLock()
    try:
        assert first.acquire() and first.held()
        assert not second.acquire()
        first.release()
        assert second.acquire()
    finally:
        first.release()
        second.release()


@pytest.mark.django_db  # taking the lock closes stale database connections, as the daemon does
def test_a_stand_by_daemon_says_so_once_and_takes_over(tmp_path, caplog):
    path = tmp_path / "d.lock"
    active = loop.Daemon(interval=1, source="", lock=locks.FileLock(path))
    waiting = loop.Daemon(interval=1, source="", lock=locks.FileLock(path))
    with caplog.at_level("INFO", logger="eval.daemon.loop"):
        assert active.take_lock() and active.take_lock()
        assert not waiting.take_lock() and not waiting.take_lock()
        active.lock.release()
        assert waiting.take_lock()
    waiting.lock.release()
    messages = [record.getMessage() for record in caplog.records]
    assert sum("standing by" in message for message in messages) == 1
    assert sum("now active" in message for message in messages) == 1


def test_daemon_stop_flag_ends_sleep_at_once():
    runner = loop.Daemon(interval=30, source="", lock=locks.FileLock("/dev/null"))
    threading.Timer(0.2, runner.stop).start()
    started = time.monotonic()
    assert runner.sleep(30) is False
    assert time.monotonic() - started < 10  # not the 30 s asked


@pytest.fixture
def command_lock(tmp_path, monkeypatch):
    """manage.py run_daemon in this process: a lock of its own, no signal handlers."""
    monkeypatch.setattr(loop, "make_lock", lambda: locks.FileLock(tmp_path / "command.lock"))
    monkeypatch.setattr("eval.management.commands.run_daemon.signal.signal", lambda *args: None)
    return tmp_path / "command.lock"


@pytest.mark.django_db
def test_run_daemon_once_exits_1_when_a_step_failed(settings, tmp_path, command_lock):
    settings.TASK_SOURCE = str(tmp_path / "gone.jsonl")
    with pytest.raises(CommandError) as failed:
        call_command("run_daemon", "--once")
    assert failed.value.returncode == 1
    settings.TASK_SOURCE = ""
    call_command("run_daemon", "--once")


@pytest.mark.django_db
def test_run_daemon_once_does_nothing_while_another_holds_the_lock(settings, tmp_path, command_lock, caplog):
    settings.TASK_SOURCE = str(tmp_path / "gone.jsonl")  # would fail, were a pass run
    other = locks.FileLock(command_lock)
    assert other.acquire()
    try:
        with caplog.at_level("INFO", logger="eval.daemon.loop"):
            call_command("run_daemon", "--once")
    finally:
        other.release()
    assert "nothing to do (--once)" in caplog.text and "pass: " not in caplog.text


# --- subprocesses ----------------------------------------------------------------------


class DaemonProcess:
    """run_sync_daemon.py as a subprocess whose log lines are collected by a thread."""

    def __init__(self, *args, env=None):
        self.lines = queue.Queue()
        self.seen = []
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run_sync_daemon.py"), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {timeout} s; output so far:\n" + "\n".join(self.seen))

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=0.1))
            except queue.Empty:
                pass
        return self.seen

    def terminate(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def daemon_env(transactional_db, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "SYNC_INTERVAL_SECONDS": "1",
        "TASK_SOURCE": "",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    started = []

    def start(*args, **extra):
        process = DaemonProcess(*args, env={**env, **extra})
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def test_once_pass_in_a_subprocess_syncs_and_requeues_an_expired_lease(daemon_env, tmp_path, task):
    source = tmp_path / "sub.jsonl"
    source.write_text(json.dumps({"id": "s1", "prompt": "hello"}) + "\n")
    job = expired_job(task)
    heartbeat("old", timedelta(days=3))

    process = daemon_env("--once", TASK_SOURCE=str(source))
    assert process.proc.wait(60) == 0, "\n".join(process.drain(0.5))
    line = process.wait_for("pass: ")
    assert "sync sub: created=1" in line and "leases requeued=1" in line and "heartbeats pruned=1" in line
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == ("queued", "lease_expired", 1)
    assert Task.objects.filter(source="sub", external_id="s1").exists()
    assert not WorkerHeartbeat.objects.exists()


def test_two_daemons_only_one_works_and_the_other_takes_over(daemon_env):
    first = daemon_env()
    first.wait_for("pass: ")
    second = daemon_env()
    second.wait_for("standing by")
    passes = [line for line in second.drain(2.5) if "pass: " in line]
    assert passes == []
    first.drain(0.5)
    assert sum("pass: " in line for line in first.seen) >= 2  # the active one keeps working

    assert first.terminate() == 0
    second.wait_for("now active", timeout=10)
    second.wait_for("pass: ", timeout=10)
    assert second.terminate() == 0


def test_sigterm_stops_the_daemon_promptly(daemon_env):
    process = daemon_env(SYNC_INTERVAL_SECONDS="60")
    process.wait_for("pass: ")
    started = time.monotonic()
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(10) == 0
    assert time.monotonic() - started < 10  # not the 60 s interval
    process.wait_for("stopped after 1 pass")


def test_sigterm_during_a_slow_drip_fetch_stops_promptly_and_frees_the_lock(daemon_env):
    with SlowSource(every=0.2, drip_for=120) as server:
        process = daemon_env(
            TASK_SOURCE=server.url("/drip.json"), SYNC_FETCH_TIMEOUT_SECONDS="600", SYNC_INTERVAL_SECONDS="60"
        )
        process.wait_for("sync daemon started")
        assert server.requested.wait(30), "\n".join(process.drain(0.5))
        started = time.monotonic()
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(20) == 0
        assert time.monotonic() - started < 5  # generous: it stops within about a second
    line = process.wait_for("pass: ")
    assert "sync: interrupted by a stop request" in line
    process.wait_for("stopped after 1 pass")
    lock = locks.make_lock()
    try:
        assert lock.acquire(), "the stopped daemon still holds the lock"
    finally:
        lock.release()


def test_once_when_another_daemon_is_active_exits_without_a_pass(daemon_env):
    active = daemon_env(SYNC_INTERVAL_SECONDS="60")
    active.wait_for("pass: ")
    once = daemon_env("--once")
    assert once.proc.wait(60) == 0
    once.wait_for("nothing to do")
    assert not any("pass: " in line for line in once.drain(0.2))
    assert active.terminate() == 0


def test_bad_settings_exit_1_with_the_message(daemon_env):
    process = daemon_env("--once", SYNC_INTERVAL_SECONDS="soon")
    assert process.proc.wait(60) == 1
    assert any("SYNC_INTERVAL_SECONDS='soon' is not a number" in line for line in process.drain(0.5))


def test_once_exits_1_when_the_sync_failed(daemon_env, tmp_path):
    process = daemon_env("--once", TASK_SOURCE=str(tmp_path / "gone.jsonl"))
    assert process.proc.wait(60) == 1
    line = process.wait_for("pass: ")
    assert "sync: failed" in line and "no such file" in line
