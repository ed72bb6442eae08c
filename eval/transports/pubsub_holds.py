"""What a pubsub worker keeps between a message's arrival and its job's end.

``Holds``: the un-acked message of each job this worker runs (acked when
the attempt settles, nacked when it is handed back) or that waits here for
its retry backoff (looked at again when due). A job claimed by id, with no
message of its own (a lease watch's), is held with ``None``.

``LeaseWatch``: jobs seen running on another worker. That worker may be
dead, its lease not yet run out; a message for such a job used to be acked
and forgotten, leaving the job to the daemon's lease repair and, when that
repair's message went astray, to its republish minutes later. Holding the
message instead took a flow-control slot per job for up to a lease: after a
crash with a backlog, the new worker sat idle with its slots full of held
copies while the emulator cycled the backlog through the dead worker's
stream (800 jobs: delivery attempts up to 8 of 10). So the message is acked
and the job id watched: when the lease could have run out (or the worker's
lease repair requeued jobs) the worker claims it by id, as if its message
had come. The claim is the engine's conditional UPDATE: never two live
attempts. A holder that renewed the lease meanwhile is alive: the watch ends.
"""

import logging

from django.utils import timezone

log = logging.getLogger(__name__)

LEASE_GRACE_SECONDS = 1.0  # past a lease's end before claiming (the lease repair runs around then)


class Holds:
    """``arrive(job_id, message)`` puts a message (or, for a job held with
    no message, None: claim by id) back into the transport's inbox."""

    def __init__(self, loop, arrive):
        self._loop = loop
        self._arrive = arrive
        self._messages = {}  # job_id -> message, or None

    def __contains__(self, job_id):
        return job_id in self._messages

    def __len__(self):
        return len(self._messages)

    def keep(self, job_id, message):
        """Hold ``message`` for a job that starts here; an older message held
        for it (waiting for a backoff) is a copy: acked."""
        older = self._messages.get(job_id)
        if older is not None and older is not message:
            older.ack()
        self._messages[job_id] = message

    def take(self, job_id):
        """The message held for ``job_id`` (None if none), no longer held."""
        return self._messages.pop(job_id, None)

    def look_again(self, job_id, delay, message=None):
        """Back into the inbox after ``delay`` s, if still held then (a message
        held since for the same job, e.g. on a claim, is left alone)."""
        if message is not None or job_id not in self._messages:
            self._messages[job_id] = message
        held = self._messages[job_id]
        self._loop.call_later(max(0.0, delay), self._back, job_id, held)

    def release(self):
        """Every message held, no longer held (to nack them on the way out)."""
        messages = [message for message in self._messages.values() if message is not None]
        self._messages.clear()
        return messages

    def _back(self, job_id, message):
        if job_id in self._messages and self._messages[job_id] is message:
            del self._messages[job_id]
            self._arrive(job_id, message)


class LeaseWatch:
    """Jobs running elsewhere, claimed by id once their lease could have run
    out: ``arrive(job_id, None)`` hands the id to the transport's inbox;
    ``recheck_seconds``: how soon to try again when the lease already ran out
    (the worker's lease-repair interval)."""

    def __init__(self, loop, arrive, recheck_seconds):
        self._loop = loop
        self._arrive = arrive
        self._recheck = recheck_seconds
        self._leases = {}  # job_id -> the lease end first seen

    def __contains__(self, job_id):
        return job_id in self._leases

    def watch(self, job_id, lease_expires_at):
        """Watch a job seen running elsewhere until its lease could have run
        out. False (and no watch) once its holder renewed the lease since the
        watch began: it is alive."""
        first = self._leases.get(job_id)
        if lease_expires_at is None or (first is not None and lease_expires_at > first):
            self._leases.pop(job_id, None)
            return False
        if first is None:
            self._leases[job_id] = lease_expires_at
            log.info("watching the lease of a job running elsewhere", extra={"job_id": job_id})
        left = (lease_expires_at - timezone.now()).total_seconds()
        self.again(job_id, left + LEASE_GRACE_SECONDS if left > 0 else self._recheck)
        return True

    def again(self, job_id, delay):
        """Claim ``job_id`` after ``delay`` s, if still watched then."""
        self._loop.call_later(max(0.0, delay), self._due, job_id)

    def forget(self, job_id):
        self._leases.pop(job_id, None)

    def leases_requeued(self):
        """The lease repair requeued jobs: claim every watched one now."""
        for job_id in list(self._leases):
            self._arrive(job_id, None)

    def _due(self, job_id):
        if job_id in self._leases:
            self._arrive(job_id, None)
