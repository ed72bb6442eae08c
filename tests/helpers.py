import socket
import subprocess
import sys
import time
from pathlib import Path


def wait_for(predicate, timeout=10.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def login(user):
    """A test client with ``user``'s session."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def free_port():
    """A loopback TCP port nothing listens on (for a server a test starts, or a refused connection)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_deploy(env, timeout=120):
    """`manage.py check --deploy --fail-level WARNING` in a child with ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
