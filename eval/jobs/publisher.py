"""The background publisher of a process (pubsub transport).

A request never waits on the broker: once the transaction that queued jobs
commits, their ids are handed to this thread, which publishes them with a
short deadline (PUBSUB_PUBLISH_TIMEOUT_SECONDS) and marks them published. The
outbox row (``published_at`` NULL) is the promise: what the thread does not
send (its queue is full, the breaker is open, the broker fails, the process
exits first) the daemon's republish repair sends later.

One thread per process, started on first use, so a forking server (gunicorn)
starts it in each child, never in the parent before the fork; a child that
inherits a started publisher forgets it and starts its own. A daemon thread:
it never holds up an exit, and at exit what is pending gets one publish
deadline at most.
"""

import atexit
import functools
import logging
import os
import queue as stdqueue
import threading
import time
import weakref

from django.conf import settings
from django.db import connections

from eval import broker as queue

log = logging.getLogger(__name__)

MAX_PENDING = 1000  # handed-over batches waiting; beyond, the rows wait for the daemon
MAX_IDS_PER_PUBLISH = 500  # batches waiting are sent together, up to this many ids


class BackgroundPublisher:
    def __init__(self, send, *, max_pending=MAX_PENDING):
        self.send = send  # job ids -> how many were sent (outbox.publish)
        self.max_pending = max_pending
        self.left_for_daemon = 0  # batches not handed over (queue full or breaker open)
        self._forget()
        os.register_at_fork(after_in_child=functools.partial(_forget_in_child, weakref.ref(self)))

    def _forget(self):
        self._lock = threading.Lock()
        self._pending = None
        self._thread = None

    @property
    def thread(self):
        return self._thread

    def submit(self, job_ids):
        """Hand jobs to the thread without waiting. False when they are left
        to the daemon's republish (the breaker is open, or the queue is full)."""
        job_ids = list(job_ids)
        if not job_ids:
            return True
        if queue.publishing_paused():
            self.left_for_daemon += 1
            return False
        try:
            self._started().put_nowait(job_ids)
        except stdqueue.Full:
            self.left_for_daemon += 1
            log.warning("publisher queue full: %d job(s) left for the daemon's republish", len(job_ids))
            return False
        return True

    def flush(self, timeout):
        """Wait until everything handed over was tried, at most ``timeout``
        seconds; True when it was."""
        pending = self._pending
        if pending is None:
            return True
        deadline = time.monotonic() + timeout
        with pending.all_tasks_done:
            while pending.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                pending.all_tasks_done.wait(left)
        return True

    def _started(self):
        with self._lock:
            if self._thread is None:
                self._pending = stdqueue.Queue(self.max_pending)
                self._thread = threading.Thread(
                    target=self._run, args=(self._pending,), name="job-publisher", daemon=True
                )
                self._thread.start()
                atexit.register(self._at_exit)
            return self._pending

    def _run(self, pending):
        while True:
            taken = [pending.get()]
            while sum(map(len, taken)) < MAX_IDS_PER_PUBLISH:
                try:
                    taken.append(pending.get_nowait())
                except stdqueue.Empty:
                    break
            try:
                self._publish([job_id for job_ids in taken for job_id in job_ids])
            finally:
                if pending.empty():
                    connections.close_all()  # idle: hold no database connection (this thread's own)
                for _ in taken:
                    pending.task_done()

    def _publish(self, job_ids):
        if queue.publishing_paused():  # opened since they were handed over
            self.left_for_daemon += 1
            return
        try:
            self.send(job_ids)
        except Exception as error:  # the thread must live on; the rows wait for the daemon
            log.warning(
                "background publish of %d job(s) failed (%s: %s); the daemon will republish them",
                len(job_ids),
                type(error).__name__,
                error,
            )

    def _at_exit(self):
        if self._thread is not None and not self.flush(settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS):
            log.warning("exiting with jobs not yet published; the daemon will republish them")


def _forget_in_child(ref):
    publisher = ref()
    if publisher is not None:
        publisher._forget()
