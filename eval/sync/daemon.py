"""The sync daemon (``run_sync_daemon.py``): every SYNC_INTERVAL_SECONDS

1. sync tasks from TASK_SOURCE (when set),
2. run the job engine's repairs (eval/jobs/repairs.py): expired leases requeued (or failed), queued
   jobs whose Pub/Sub message was never published or was lost republished,
3. prune WorkerHeartbeat rows not seen for a day,

and log one line per pass with its counts.

Only one daemon works at a time, however many run (one per VM is fine):
on PostgreSQL a session advisory lock held on a dedicated connection, on
SQLite an flock on a file next to the database (SQLite is one machine's
file). A daemon that does not hold the lock stands by and tries again every
interval, so it takes over within one interval of the active one dying.

SIGTERM/SIGINT only set a flag; the loop sleeps in slices of at most a
second and a sync checks the flag between batches, so the daemon stops
within about a second, exit status 0.
"""

import argparse
import fcntl
import hashlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, connections

from eval.jobs import repairs
from eval.sync.importer import SyncInterrupted, sync_tasks
from eval.sync.sources import SourceError

log = logging.getLogger("eval.sync.daemon")

LOCK_NAME = "eval.sync_daemon"
# pg_try_advisory_lock takes a signed 64-bit key: derive a stable one from the name.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


# --- the "one daemon at a time" lock -----------------------------------------------


class PostgresLock:
    """A session advisory lock on its own connection (not Django's: that one
    is closed and reopened by close_old_connections(), which would drop the
    lock silently). If the connection dies, the lock is gone: held() says so."""

    def __init__(self):
        self.conn = None

    def acquire(self):
        import psycopg

        self.release()
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params["application_name"] = f"{params.get('application_name', 'eval')}-sync-daemon-lock"[:63]
        conn = psycopg.connect(**params, autocommit=True, connect_timeout=10)
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()[0]
        if got:
            self.conn = conn
        else:
            conn.close()
        return bool(got)

    def held(self):
        if self.conn is None:
            return False
        try:
            self.conn.execute("SELECT 1").fetchone()
            return True
        except Exception:
            log.warning("lost the lock connection; another daemon may take over")
            self.release()
            return False

    def release(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
            except Exception:
                pass  # closing the session releases it anyway
            conn.close()

    def __str__(self):
        return f"PostgreSQL advisory lock {ADVISORY_LOCK_KEY}"


class FileLock:
    """An exclusive flock; the kernel releases it when the process dies."""

    def __init__(self, path):
        self.path = Path(path)
        self.handle = None

    def acquire(self):
        if self.handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return True

    def held(self):
        return self.handle is not None

    def release(self):
        handle, self.handle = self.handle, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def __str__(self):
        return f"file lock {self.path}"


def lock_path_for_sqlite(name):
    """Next to the database file, so daemons of the same database (and only
    those) exclude each other; an in-memory database gets one in .local/."""
    name = str(name)
    if not name or name == ":memory:" or name.startswith("file:"):
        return Path(settings.LOCAL_DIR) / "sync-daemon.lock"
    return Path(f"{name}.sync-daemon.lock")


def make_lock():
    if connection.vendor == "postgresql":
        return PostgresLock()
    if connection.vendor == "sqlite":
        return FileLock(lock_path_for_sqlite(connection.settings_dict["NAME"]))
    raise RuntimeError(f"the sync daemon has no lock for the {connection.vendor} backend")


def _close_old_connections():
    """Drop connections past CONN_MAX_AGE or broken (a database restart), as
    Django does around each request. Never inside a transaction (tests run a
    pass inside one; the daemon itself never does)."""
    if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        close_old_connections()


# --- one pass ----------------------------------------------------------------------


@dataclass
class PassResult:
    sync: object = None  # SyncResult, or None when no TASK_SOURCE
    requeued: int = 0
    failed: int = 0
    republished: int = 0
    pruned: int = 0
    errors: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self):
        return not self.errors

    def line(self):
        if self.sync is None:
            sync = "sync: no TASK_SOURCE" if not any("sync" in e for e in self.errors) else "sync: failed"
        else:
            counts = " ".join(f"{key}={value}" for key, value in self.sync.counts().items())
            sync = f"sync {self.sync.source}: {counts}"
        text = (
            f"pass: {sync}; leases requeued={self.requeued} failed={self.failed}; "
            f"republished={self.republished}; heartbeats pruned={self.pruned}; {self.seconds:.2f} s"
        )
        if self.errors:
            text += "; errors: " + " | ".join(self.errors)
        return text


def run_pass(source=None, should_stop=None):
    """Sync, repair, prune; every step runs even if an earlier one failed."""
    started = time.monotonic()
    should_stop = should_stop or (lambda: False)
    result = PassResult()
    _close_old_connections()
    try:
        location = settings.TASK_SOURCE if source is None else source
        if location:
            try:
                result.sync = sync_tasks(location, should_stop=should_stop)
            except SyncInterrupted:
                result.errors.append("sync: interrupted by a stop request")
            except SourceError as error:
                result.errors.append(f"sync: {error}")
            except Exception as error:
                log.exception("sync failed")
                result.errors.append(f"sync: {type(error).__name__}: {error}")
        report = repairs.run_repairs(should_stop=should_stop)
        result.requeued, result.failed = report.requeued, report.failed
        result.republished, result.pruned = report.republished, report.pruned
        result.errors.extend(report.errors)
    finally:
        _close_old_connections()
    result.seconds = time.monotonic() - started
    return result


# --- the loop ----------------------------------------------------------------------


class Daemon:
    def __init__(self, *, interval=None, once=False, source=None, lock=None):
        self.interval = float(interval if interval is not None else settings.SYNC_INTERVAL_SECONDS)
        self.once = once
        self.source = source
        self.lock = lock
        self.stopping = threading.Event()
        self.passes = 0

    def stop(self, signum=None, frame=None):
        """Signal handler: only sets a flag (the loop notices within a second)."""
        self.stopping.set()

    def install_signal_handlers(self):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def sleep(self, seconds):
        """Sleep in slices of at most a second; False when asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.stopping.wait(min(1.0, left))
        return False

    def acquire(self):
        try:
            return self.lock.held() or self.lock.acquire()
        except Exception as error:
            log.error("cannot take the %s: %s", self.lock, error)
            return False
        finally:
            _close_old_connections()

    @staticmethod
    def report_skipped(sync, limit=5):
        if sync is None or not sync.invalid:
            return
        shown = "; ".join(f"{where}: {reason}" for where, reason in sync.skipped[:limit])
        more = f" (and {sync.invalid - limit} more; see manage.py sync_tasks --dry-run)" if sync.invalid > limit else ""
        log.warning("skipped %d invalid record(s): %s%s", sync.invalid, shown, more)

    def run(self):
        """Returns the exit status: 0, or 1 when --once and the pass failed."""
        self.lock = self.lock or make_lock()
        log.info(
            "sync daemon started (pid %d, every %.1f s, source %s, %s)",
            os.getpid(),
            self.interval,
            "TASK_SOURCE" if settings.TASK_SOURCE else "none",
            self.lock,
        )
        standing_by = False
        status = 0
        try:
            while not self.stopping.is_set():
                if not self.acquire():
                    if self.once:
                        log.info("another sync daemon holds the %s; nothing to do (--once)", self.lock)
                        return 0
                    if not standing_by:
                        log.info("another sync daemon holds the %s; standing by", self.lock)
                        standing_by = True
                    self.sleep(self.interval)
                    continue
                if standing_by:
                    log.info("took the %s; this daemon is now active", self.lock)
                    standing_by = False
                started = time.monotonic()
                result = run_pass(self.source, should_stop=self.stopping.is_set)
                self.passes += 1
                (log.info if result.ok else log.warning)("%s", result.line())
                self.report_skipped(result.sync)
                if self.once:
                    status = 0 if result.ok else 1
                    break
                self.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self.lock.release()
            _close_old_connections()
            log.info("sync daemon stopped after %d pass(es)", self.passes)
        return status


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="run_sync_daemon.py",
        description="Sync tasks from TASK_SOURCE and repair jobs every SYNC_INTERVAL_SECONDS.",
    )
    parser.add_argument("--once", action="store_true", help="do one pass and exit (1 if a step failed)")
    args = parser.parse_args(argv)
    daemon = Daemon(once=args.once)
    daemon.install_signal_handlers()
    return daemon.run()
