"""The columns each kind of job move writes, shared by every transition
(transitions.py: claims, people, the daemon; endings.py: the worker's ends of
an attempt). Values only: the conditional UPDATE that applies them is the
transition's own."""

import hashlib

from django.db.models import F
from django.utils import timezone

from eval.jobs import states


def bump(**values):
    """A visible change: stamp it and move ``version`` on."""
    values.setdefault("updated_at", timezone.now())
    values["version"] = F("version") + 1
    return values


def back_to_queue(now, *, available_at=None):
    """The fields of a running job going back to the queue (every such edge)."""
    return {
        "status": states.QUEUED,
        "available_at": available_at or now,
        "worker_id": "",
        "lease_expires_at": None,
        "progress": 0,
        "output": "",
        "updated_at": now,
    }


def ended(now, output=None):
    """The fields every end of a running attempt sets."""
    values = {"finished_at": now, "lease_expires_at": None, "updated_at": now}
    if output is not None:
        values["output"] = output
        values["output_hash"] = output_hash(output)
    return values


def cancelled(now, by):
    """The fields of a queued job cancelled by a person (queued -> cancelled at once)."""
    return {
        "status": states.CANCELLED,
        "cancel_requested": True,
        "cancel_requested_by": by,
        "message": f"Cancelled by {by or 'an operator'}",
        "finished_at": now,
        "updated_at": now,
    }


def output_hash(text):
    return hashlib.sha256(text.encode()).hexdigest() if text else ""
