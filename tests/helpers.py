import time


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


def check_deploy(env, timeout=120):
    """`manage.py check --deploy --fail-level WARNING` in a child with ``env``."""
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
