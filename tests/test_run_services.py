"""run_services.py: the supervisor, with real child processes and signals."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import test_database_url
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def children_of(pid):
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,pgid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()]
    return {int(r[0]): (int(r[2]), r[3]) for r in rows if int(r[1]) == pid}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_tree(supervisor):
    """Even when an assertion failed: stop the supervisor and every child group."""
    groups = [pgid for pgid, _ in children_of(supervisor.pid).values()]
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_dry_run_prints_each_role():
    out = subprocess.run(
        [sys.executable, "run_services.py", "--dry-run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert [line.split(":")[0] for line in out.splitlines()] == ["web", "worker", "daemon"]
    only = subprocess.run(
        [sys.executable, "run_services.py", "--dry-run", "--only", "worker"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "WORKER_PROCESSES": "2"},
        check=True,
    ).stdout
    assert [line.split(":")[0] for line in only.splitlines()] == ["worker1", "worker2"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WORKER_PROCESSES", "two", "WORKER_PROCESSES='two' is not an integer"),
        ("WORKER_PROCESSES", "65", "WORKER_PROCESSES=65 is out of range [0, 64]"),
        ("WORKER_SHUTDOWN_GRACE_SECONDS", "soon", "WORKER_SHUTDOWN_GRACE_SECONDS='soon' is not a number"),
        ("WORKER_SHUTDOWN_GRACE_SECONDS", "-1", "WORKER_SHUTDOWN_GRACE_SECONDS=-1.0 must be at least 0"),
    ],
)
def test_a_bad_setting_is_a_clear_error_naming_it(variable, value, message):
    """run_services reads its settings through coreproject/env.py, with the settings' bounds."""
    done = subprocess.run(
        [sys.executable, "run_services.py", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, variable: value},
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"run_services: {message}"  # one line, no traceback


def test_a_killed_child_is_restarted_and_sigterm_stops_everything(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_LOCAL_DIR": str(tmp_path),  # its own supervisor locks, beside any other run
        "WORKER_PROCESSES": "1",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "1",
        "SYNC_INTERVAL_SECONDS": "1",
    }
    supervisor = subprocess.Popen(
        [sys.executable, "run_services.py", "--only", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []

    def read():
        for line in supervisor.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = wait_for(lambda: list(children_of(supervisor.pid)), timeout=20, message="the worker child")[0]
        pgid, args = children_of(supervisor.pid)[first]
        assert pgid == first and "process_llm_jobs" in args  # its own process group
        os.kill(first, signal.SIGKILL)
        second = wait_for(
            lambda: [pid for pid in children_of(supervisor.pid) if pid != first], timeout=20, message="a restart"
        )[0]
        # Let it start its own threads and connections: its "started" line, not
        # a fixed sleep (a busy box can take longer than that to import Django).
        restarted = lambda: "started: transport=" in "".join(lines).rpartition("restarting")[2]  # noqa: E731
        wait_for(restarted, timeout=30, message="the restarted worker's start")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    finally:
        stop_tree(supervisor)
    reader.join(10)
    output = "".join(lines)
    assert "worker exited with code -9; restarting" in output
    assert "all services stopped" in output
    assert not alive(second), "the restarted worker outlived the supervisor"
    assert "worker | " in output  # children's lines are prefixed with their name
