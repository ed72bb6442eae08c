"""The daemon's loop: every SYNC_INTERVAL_SECONDS, if this daemon holds the
lock (locks.py), one pass (passes.py); otherwise stand by and try the lock
again every interval, so a stand-by takes over within one interval of the
active daemon dying.

``stop()`` (the SIGTERM/SIGINT handler) only sets a flag. Sleeps are slices
of at most a second, the sync checks the flag between batches and every
fraction of a second while it waits for a URL (eval/sync/fetch.py), and a
pass skips its steps not yet begun, so the daemon stops within about a
second whatever it is doing, and releases its lock for a stand-by.
"""

import logging
import os
import threading
import time

from django.conf import settings

from eval.daemon.locks import make_lock
from eval.daemon.passes import close_stale_connections, run_pass

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, *, interval=None, once=False, source=None, lock=None):
        self.interval = float(interval if interval is not None else settings.SYNC_INTERVAL_SECONDS)
        self.once = once
        self.source = settings.TASK_SOURCE if source is None else source
        self.lock = lock
        self.stopping = threading.Event()
        self.standing_by = False
        self.passes = 0

    def stop(self, signum=None, frame=None):
        """Signal handler: only sets a flag (the loop notices within a second)."""
        self.stopping.set()

    def sleep(self, seconds):
        """Sleep in slices of at most a second; False when asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.stopping.wait(min(1.0, left))
        return False

    def take_lock(self):
        """True when this daemon is the active one; says when it stands by or takes over."""
        try:
            active = self.lock.held() or self.lock.acquire()
        except Exception as error:
            log.error("cannot take the %s: %s", self.lock, error)
            active = False
        finally:
            close_stale_connections()
        if active and self.standing_by:
            log.info("took the %s; this daemon is now active", self.lock)
        elif not active and not self.standing_by and not self.once:
            log.info("another sync daemon holds the %s; standing by", self.lock)
        self.standing_by = not active
        return active

    def work(self):
        """One pass, logged; returns it."""
        done = run_pass(
            self.source, should_stop=self.stopping.is_set, repeat_for=self.interval, repair_every=self.interval
        )
        self.passes += 1
        done.log(log)
        return done

    def run(self):
        """Loop until stopped; with ``once``, a single pass. False when that pass failed."""
        self.lock = self.lock or make_lock()
        log.info(
            "sync daemon started (pid %d, every %.1f s, source %s, %s)",
            os.getpid(),
            self.interval,
            "TASK_SOURCE" if self.source else "none",
            self.lock,
        )
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                if self.take_lock():
                    done = self.work()
                    if self.once:
                        return done.ok
                elif self.once:
                    log.info("another sync daemon holds the %s; nothing to do (--once)", self.lock)
                    return True
                self.sleep(self.interval - (time.monotonic() - started))
            return True
        finally:
            self.lock.release()
            close_stale_connections()
            log.info("sync daemon stopped after %d pass(es)", self.passes)
