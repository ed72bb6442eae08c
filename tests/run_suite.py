"""Run the whole suite: on SQLite, and on PostgreSQL when reachable.

Each pass runs under pytest-xdist (TEST_WORKERS workers; pytest-django gives
each worker its own test database: test_suite.sqlite3_gw0, test_eval_gw0 ...).
The two passes run at the same time (TEST_PASSES=serial runs them one after
the other); each pass's output goes to a log file and is printed in one piece
when that pass ends, so the two never interleave.

The PostgreSQL pass runs only the tests that use the database (conftest.py,
TEST_DATABASE_TESTS_ONLY): a test without database access gives the same
answer on both passes, so it runs once, on the SQLite pass.

REQUIRE_POSTGRES=1 turns "PostgreSQL unreachable" into a failure (CI).
Pytest's exit code 5 (no tests collected) counts as a failure: a suite that
ran nothing proves nothing. The one exception: a PostgreSQL pass whose
selected tests all use no database, when the SQLite pass did run tests.

    python tests/run_suite.py [pytest arguments]
    TEST_WORKERS=1 python tests/run_suite.py       # no xdist
    TEST_PASSES=serial python tests/run_suite.py   # SQLite, then PostgreSQL
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext, suppress
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/eval")
NO_TESTS_COLLECTED = 5
DEFAULT_WORKERS = 2  # per pass: on 2 cores, 2 beat 4 (README, `make test`)


def flag(name):
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def postgres_reachable(url):
    try:
        with psycopg.connect(url.replace("/eval", "/postgres"), connect_timeout=3):
            return True
    except Exception as error:
        print(f"PostgreSQL at {url} unreachable: {error}")
        return False


def workers():
    value = os.environ.get("TEST_WORKERS", "").strip()
    if not value:
        return DEFAULT_WORKERS
    if value == "auto":
        return max(1, os.cpu_count() or 1)
    try:
        return max(1, int(value))
    except ValueError:
        sys.exit(f"TEST_WORKERS must be a number or 'auto', not {value!r}")


def xdist_args(args, count):
    """``-n COUNT --dist worksteal`` unless the caller chose (or ruled out) xdist already."""
    chosen = any(a.startswith(("-n", "--numprocesses")) or "no:xdist" in a for a in args)
    if chosen or count <= 1:
        return []
    return ["-n", str(count), "--dist", "worksteal"]


def elapsed(started):
    seconds = round(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Pass:
    """One pytest run on one database. When passes run at once, its output
    goes to a log file, printed in one piece when the pass ends."""

    def __init__(self, label, extra_env, args, log_dir):
        self.label = label
        self.env = {**os.environ, **extra_env}
        self.command = [sys.executable, "-m", "pytest", *args]
        self.log_path = Path(log_dir) / f"{label.lower()}.log"
        self.process = None
        self.code = None
        self.took = ""

    def start(self, capture):
        self.started = time.monotonic()
        self.captured = capture
        with open(self.log_path, "wb") if capture else nullcontext() as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT if capture else None,
                start_new_session=True,  # Ctrl-C reaches it through stop(), workers included
            )
        return self

    def wait(self):
        self.code = self.process.wait()
        return self.report()

    def poll(self):
        """The pass's exit code, reported once, when it has ended; else None."""
        if self.code is None and self.process.poll() is not None:
            self.code = self.process.returncode
            self.report()
        return self.code

    def report(self):
        self.took = elapsed(self.started)
        if self.captured:
            print(f"\n===== test suite on {self.label} ({self.took}) =====", flush=True)
            sys.stdout.buffer.write(self.log_path.read_bytes())
            sys.stdout.flush()
        if self.code == NO_TESTS_COLLECTED:
            print(f"{self.label}: pytest collected no tests")
        return self.code

    def stop(self):
        """Ctrl-C: end this pass's pytest and its xdist workers (its own process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def plan(args, log_dir):
    """The passes to run, and the result of those that cannot run."""
    count = workers()
    sqlite_env = {"DATABASE_URL": f"sqlite:///{ROOT / '.local' / 'suite.sqlite3'}"}
    passes = [Pass("SQLite", sqlite_env, [*xdist_args(args, count), *args], log_dir)]
    results = {}
    if postgres_reachable(PG_URL):
        pg_env = {"DATABASE_URL": PG_URL, "TEST_DATABASE_TESTS_ONLY": "1"}
        passes.append(Pass("PostgreSQL", pg_env, [*xdist_args(args, count), *args], log_dir))
    elif flag("REQUIRE_POSTGRES"):
        print("REQUIRE_POSTGRES=1 but PostgreSQL is unreachable")
        results["PostgreSQL"] = 1
    else:
        print("SKIPPED: PostgreSQL pass (unreachable; set REQUIRE_POSTGRES=1 to make this a failure)")
    return passes, results, count


def run(passes, together):
    try:
        if together:
            for each in passes:
                each.start(capture=True)
            print(f"running {' and '.join(p.label for p in passes)} at once; each one's output follows when it ends")
            while any(each.poll() is None for each in passes):
                time.sleep(0.5)
        else:
            for each in passes:
                print(f"\n===== test suite on {each.label} =====", flush=True)
                each.start(capture=False).wait()
    except KeyboardInterrupt:
        for each in passes:
            each.stop()
        raise


def verdict(label, code, results):
    if code == 0:
        return "ok"
    if label == "PostgreSQL" and code == NO_TESTS_COLLECTED and results.get("SQLite") != NO_TESTS_COLLECTED:
        return "ok (no selected test uses the database)"
    return f"FAILED (exit {code})"


def interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    args = sys.argv[1:]
    signal.signal(signal.SIGTERM, interrupt)  # a CI timeout: stop the passes too
    started = time.monotonic()
    (ROOT / ".local").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="suite-logs-") as log_dir:
        passes, results, count = plan(args, log_dir)
        together = len(passes) > 1 and os.environ.get("TEST_PASSES", "together") != "serial"
        try:
            run(passes, together)
        except KeyboardInterrupt:
            sys.exit("\ninterrupted: the passes were stopped")
    results = {**{p.label: p.code for p in passes}, **results}
    took = {p.label: f" in {p.took}" for p in passes}
    mode = f"{count} xdist worker(s) per pass, passes {'at once' if together else 'one after the other'}"
    print(f"\n===== summary ({mode}; {elapsed(started)} in all) =====")
    verdicts = {label: verdict(label, code, results) for label, code in results.items()}
    for label, text in verdicts.items():
        print(f"{label}: {text}{took.get(label, '')}")
    sys.exit(0 if all(text.startswith("ok") for text in verdicts.values()) else 1)


if __name__ == "__main__":
    main()
