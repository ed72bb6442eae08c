"""One active daemon at a time, however many run (one per VM is fine).

PostgreSQL: a session advisory lock held on a dedicated connection. SQLite:
an flock on a file next to the database (SQLite is one machine's file). The
lock's name and file are those of the earlier ``eval.sync.daemon``, so old and
new daemons exclude each other during a rolling deploy.
"""

import fcntl
import hashlib
import logging
import os
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

LOCK_NAME = "eval.sync_daemon"
# pg_try_advisory_lock takes a signed 64-bit key: derive a stable one from the name.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


class PostgresLock:
    """A session advisory lock on its own connection (not Django's: that one
    is closed and reopened by close_old_connections(), which would drop the
    lock silently). If the connection dies, the lock is gone: held() says so."""

    def __init__(self):
        self.conn = None

    def acquire(self):
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
    raise RuntimeError(f"the daemon has no lock for the {connection.vendor} backend")
