"""The messages a pubsub worker keeps un-acked, at most one per job.

- The message of a job running here: acked when the attempt settles
  (nacked when it is handed back).
- The message of a job in retry backoff: looked at again when it is due.
- The message of a job running on another worker: that worker may be dead,
  its lease not yet run out. Acking such a message (what the worker once did)
  left nothing to bring the job back but the daemon's lease repair and, if
  that message was lost too, its republish minutes later. It is held until
  the lease could have run out, then looked at again: by then either the
  holder renewed the lease (it is alive: the message is a copy, acked) or
  the lease repair requeued the job and this worker claims it. The claim is
  the engine's conditional UPDATE, so there are never two live attempts.

While held, the client keeps extending the message's ack deadline (it
counts against the subscription's flow control, as a job would).
"""

import logging

from django.utils import timezone

log = logging.getLogger(__name__)

LEASE_GRACE_SECONDS = 1.0  # past a lease's end before looking again (the repair runs around then)


class Holds:
    """``arrive(job_id, message)`` puts a message back into the transport's
    inbox (on the loop); ``recheck_seconds``: how long to wait to look again
    at a job whose lease already ran out (the worker's lease-repair interval)."""

    def __init__(self, loop, arrive, recheck_seconds):
        self._loop = loop
        self._arrive = arrive
        self._recheck = recheck_seconds
        self._messages = {}  # job_id -> message
        self._lease_seen = {}  # job_id -> lease end first seen for a job running elsewhere

    def __contains__(self, job_id):
        return job_id in self._messages

    def __len__(self):
        return len(self._messages)

    def keep(self, job_id, message):
        """Hold ``message`` for a job that starts here; an older message held
        for it (waiting for a backoff or a lease) is a copy: acked."""
        older = self._messages.get(job_id)
        if older is not None and older is not message:
            older.ack()
        self._messages[job_id] = message
        self._lease_seen.pop(job_id, None)

    def take(self, job_id):
        """The message held for ``job_id`` (None if none), no longer held."""
        self._lease_seen.pop(job_id, None)
        return self._messages.pop(job_id, None)

    def forget(self, job_id):
        self._lease_seen.pop(job_id, None)

    def look_again(self, job_id, delay, message=None):
        """Back into the inbox after ``delay`` s, if still held then (a message
        held since for the same job, e.g. on a claim, is left alone)."""
        if message is not None:
            self._messages[job_id] = message
        message = self._messages.get(job_id)
        if message is not None:
            self._loop.call_later(max(0.0, delay), self._back, job_id, message)

    def wait_for_lease(self, job_id, message, lease_expires_at):
        """Hold the message of a job running elsewhere until its lease could
        have run out. False (the caller acks it) when the holder renewed the
        lease since this job's message was first held: it is alive."""
        first = self._lease_seen.get(job_id)
        if lease_expires_at is None or (first is not None and lease_expires_at > first):
            self._lease_seen.pop(job_id, None)
            return False
        if first is None:
            self._lease_seen[job_id] = lease_expires_at
            log.info("holding the message of a job running elsewhere until its lease ends", extra={"job_id": job_id})
        left = (lease_expires_at - timezone.now()).total_seconds()
        # Run out already: the lease repair requeues it within its interval (and wakes us).
        self.look_again(job_id, left + LEASE_GRACE_SECONDS if left > 0 else self._recheck, message)
        return True

    def leases_requeued(self):
        """The lease repair requeued jobs: look at every message waiting for a lease now."""
        for job_id in list(self._lease_seen):
            message = self._messages.get(job_id)
            if message is not None:
                self._back(job_id, message)

    def release(self):
        """Every message held, no longer held (to nack them on the way out)."""
        messages = list(self._messages.values())
        self._messages.clear()
        self._lease_seen.clear()
        return messages

    def _back(self, job_id, message):
        if self._messages.get(job_id) is message:
            del self._messages[job_id]
            self._arrive(job_id, message)
