#!/usr/bin/env python
"""Fault: SIGTERM to a real ``manage.py run_daemon`` while it fetches a
slow-drip task source (a URL that sends a byte, then another every 0.2 s and
never ends; tests/fakes/slow_source.py). Measures the seconds from SIGTERM to
the process's exit, against a scratch database (SQLite in a temp directory,
or PostgreSQL ``evalbench_fault_drip``, dropped and re-created), with
SYNC_FETCH_TIMEOUT_SECONDS far away (600 s) so only the stop can end the fetch.

    .venv/bin/python bench/fault_slow_drip.py [--database sqlite|postgres]

``measure()`` is imported by bench/faults.py. Bar: about a second (the fetch
looks at the stop request every 0.2 s); before the fix the daemon ignored
SIGTERM until the fetch ended. Exits 1 if the daemon did not exit 0.
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pg_url, reset_postgres  # noqa: E402
from tests.fakes.slow_source import SlowSource  # noqa: E402

PG_DATABASE = "evalbench_fault_drip"
SETTLE_SECONDS = 1.0  # after the request arrived: the daemon is waiting in the drip


def scratch_env(workdir, database):
    url = f"sqlite:///{workdir}/db.sqlite3" if database == "sqlite" else pg_url(PG_DATABASE)
    if database == "postgres":
        reset_postgres(PG_DATABASE)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_LOCAL_DIR": str(workdir),
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def measure(database="sqlite"):
    """Seconds from SIGTERM to the exit of a daemon caught in a slow-drip fetch."""
    with tempfile.TemporaryDirectory(prefix="fault-drip-") as workdir, SlowSource(every=0.2, drip_for=600) as server:
        env = scratch_env(workdir, database)
        env.update(TASK_SOURCE=server.url("/drip.json"), SYNC_FETCH_TIMEOUT_SECONDS="600", SYNC_INTERVAL_SECONDS="60")
        log_path = Path(workdir) / "daemon.log"
        with open(log_path, "w") as log:
            daemon = subprocess.Popen(
                [sys.executable, "manage.py", "run_daemon"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            if not server.requested.wait(60):
                raise RuntimeError("the daemon never fetched the source:\n" + log_path.read_text())
            time.sleep(SETTLE_SECONDS)
            started = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(120)
            seconds = time.monotonic() - started
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        if code != 0:
            raise RuntimeError(f"the daemon exited {code}:\n" + log_path.read_text())
        return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    try:
        seconds = measure(args.database)
    except RuntimeError as error:
        print(f"fault slow-drip ({args.database}): {error}")
        return 1
    print(f"fault slow-drip ({args.database}): SIGTERM to exit during a slow-drip fetch: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
