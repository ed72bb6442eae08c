"""The sync daemon: a pass syncs and repairs; one active daemon at a time; SIGTERM stops it."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from eval.jobs import create
from eval.models import JobStatus, LLMJob, Task, WorkerHeartbeat
from eval.sync import daemon

ROOT = Path(__file__).resolve().parent.parent


def database_url():
    """The test database, for subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = urllib.parse.quote(s.get("USER") or "")
    password = urllib.parse.quote(s.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{s.get('HOST') or 'localhost'}{port}/{s['NAME']}"


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


# --- in process --------------------------------------------------------------------


@pytest.mark.django_db
def test_pass_syncs_repairs_and_prunes(tmp_path, settings, task, monkeypatch):
    source = tmp_path / "daemon-set.jsonl"
    source.write_text(json.dumps({"id": "d1", "prompt": "hello"}) + "\n")
    settings.TASK_SOURCE = str(source)
    requeue = expired_job(task)
    exhausted = expired_job(task, attempts=3, max_attempts=3)
    heartbeat("old", timedelta(days=2))
    heartbeat("recent", timedelta(minutes=1))
    settings.JOB_TRANSPORT = "pubsub"  # the requeued job then waits to be published again
    republished = []
    monkeypatch.setattr(
        "eval.queue.publish", lambda messages: republished.extend(m.job_id for m in messages) or republished
    )

    result = daemon.run_pass()
    assert result.ok, result.errors
    assert (result.sync.created, result.requeued, result.failed) == (1, 1, 1)
    assert (result.republished, result.pruned) == (1, 1)
    assert republished == [requeue.pk]
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
    result = daemon.run_pass()
    assert result.ok and result.sync is None and result.requeued == 1
    assert "no TASK_SOURCE" in result.line()

    settings.TASK_SOURCE = str(tmp_path / "gone.jsonl")
    LLMJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker_id="w", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    result = daemon.run_pass()
    assert not result.ok and "no such file" in result.errors[0]
    assert result.requeued == 1


def test_file_lock_excludes_a_second_holder(tmp_path):
    first, second = daemon.FileLock(tmp_path / "d.lock"), daemon.FileLock(tmp_path / "d.lock")
    assert first.acquire() and first.held()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


@pytest.mark.django_db(transaction=True)
def test_postgres_advisory_lock_excludes_a_second_holder():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    first, second = daemon.PostgresLock(), daemon.PostgresLock()
    try:
        assert first.acquire() and first.held()
        assert not second.acquire()
        first.release()
        assert second.acquire()
    finally:
        first.release()
        second.release()


def test_daemon_stop_flag_ends_sleep_at_once():
    runner = daemon.Daemon(interval=30, lock=daemon.FileLock("/dev/null"))
    threading.Timer(0.2, runner.stop).start()
    started = time.monotonic()
    assert runner.sleep(30) is False
    assert time.monotonic() - started < 1.5


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

    def terminate(self, timeout=5):
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
        "DATABASE_URL": database_url(),
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
    assert time.monotonic() - started < 2.0
    process.wait_for("stopped after 1 pass")


def test_once_when_another_daemon_is_active_exits_without_a_pass(daemon_env):
    active = daemon_env(SYNC_INTERVAL_SECONDS="60")
    active.wait_for("pass: ")
    once = daemon_env("--once")
    assert once.proc.wait(60) == 0
    once.wait_for("nothing to do")
    assert not any("pass: " in line for line in once.drain(0.2))
    assert active.terminate() == 0
