"""The worker's endings of an attempt: running -> succeeded | failed |
cancelled, or back to queued (a transient error, a hand-back). Each is one
conditional UPDATE fenced by the job's id, ``running``, the worker and the
attempt holding it (batch.held), so a late write of an earlier attempt changes
nothing. The other moves are in transitions.py."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from eval.jobs import fields, states
from eval.jobs.backoff import retry_delay
from eval.jobs.batch import MESSAGE_CHARS, held, update_held_many
from eval.jobs.errors import describe


@dataclass(frozen=True)
class Success:
    job_id: object
    attempt: int
    output: str
    stop_reason: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Decimal | None = None
    # A run's automatic checks of the output ({"exact": true}), written in the same statement.
    check_results: dict | None = None
    # Called in the same transaction once this row is written (an LLM judge's
    # judgement, the judge jobs a run's output makes possible); not when it was not held.
    on_written: Callable[[], object] | None = field(default=None, compare=False)


_SUCCESS_COLUMNS = [
    ("output", "text"),
    ("output_hash", "text"),
    ("stop_reason", "text"),
    ("input_tokens", "integer"),
    ("output_tokens", "integer"),
    ("cost_usd", "numeric"),
]


def succeed(worker_id, results):
    """running -> succeeded for many attempts in ONE statement (one is a list
    of one), then each written row's ``on_written``, in the same transaction.
    Returns the ids written; the others were no longer held."""
    if not results:
        return set()
    now = timezone.now()
    # Plain successes (the hot path) keep the statement as it was: check_results
    # is a column only when a row of the batch carries some.
    checked = any(r.check_results is not None for r in results)
    rows = [
        (
            r.job_id,
            r.attempt,
            r.output,
            fields.output_hash(r.output),
            r.stop_reason or "",
            r.input_tokens,
            r.output_tokens,
            None if r.cost is None else str(r.cost),
            *([json.dumps(r.check_results or {})] if checked else []),
        )
        for r in results
    ]
    columns = _SUCCESS_COLUMNS + ([("check_results", _json_type())] if checked else [])
    constants = {"status": states.SUCCEEDED.value, "progress": 100, "message": "Done", **fields.ended(now)}
    hooks = [r for r in results if r.on_written is not None]
    if not hooks:
        return update_held_many(worker_id, rows, columns=columns, constants=constants)
    with transaction.atomic():  # a hook that fails takes its success back with it
        written = update_held_many(worker_id, rows, columns=columns, constants=constants)
        for r in hooks:
            if r.job_id in written:
                r.on_written()
    return written


def _json_type():
    return "jsonb" if connection.vendor == "postgresql" else "text"


def fail(job_id, worker_id, attempt, *, code, message="", output="", input_tokens=None, output_tokens=None, cost=None):
    """running -> failed. Returns whether this attempt still held the job (``cost``:
    a call that was paid for, e.g. a judge's malformed answer)."""
    now = timezone.now()
    text = message or describe(code)
    return bool(
        held(job_id, worker_id, attempt).update(
            **fields.bump(
                **fields.ended(now, output),
                status=states.FAILED,
                message=f"Failed: {text}"[:MESSAGE_CHARS],
                error_code=code,
                error_message=text,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost,
            )
        )
    )


def finish_cancel(job_id, worker_id, attempt, *, output="", output_tokens=None):
    """running -> cancelled: the worker stopped a job whose cancel was requested."""
    now = timezone.now()
    return bool(
        held(job_id, worker_id, attempt).update(
            **fields.bump(
                **fields.ended(now, output),
                status=states.CANCELLED,
                message=Concat(Value("Cancelled by "), F("cancel_requested_by")),
                output_tokens=output_tokens,
            )
        )
    )


def retry_later(job_id, worker_id, attempt, *, code, message="", retry_after=None, max_attempts=None):
    """A transient error: running -> queued after a backoff while attempts are
    left, else running -> failed. Returns (status, delay_seconds), or
    (None, None) if this worker no longer held the job."""
    if max_attempts is None or attempt < max_attempts:
        delay = retry_delay(attempt, retry_after)
        now = timezone.now()
        what = describe(code)
        changed = (
            held(job_id, worker_id, attempt)
            .filter(attempts__lt=F("max_attempts"))
            .update(
                **fields.bump(
                    **fields.back_to_queue(now, available_at=now + timedelta(seconds=delay)),
                    error_code=code,
                    error_message=message or what,
                    message=f"{what}; retrying in {delay:.0f} s (attempt {attempt + 1} of {max_attempts or '?'})",
                )
            )
        )
        if changed:
            return states.QUEUED, delay
    # Attempts used up (fenced again: a job no longer held changes nothing).
    if fail(job_id, worker_id, attempt, code=code, message=message):
        return states.FAILED, None
    return None, None


def hand_back(job_id, worker_id, attempt):
    """running -> queued: a stopping worker returns a job it could not finish;
    the attempt is not consumed."""
    now = timezone.now()
    return bool(
        held(job_id, worker_id, attempt).update(
            **fields.bump(
                **fields.back_to_queue(now),
                attempts=F("attempts") - 1,
                message="Handed back by a stopping worker; waiting for another",
            )
        )
    )


def succeed_one(job_id, worker_id, attempt, **result):
    """running -> succeeded for one attempt: ``succeed`` with a list of one."""
    return job_id in succeed(worker_id, [Success(job_id, attempt, **result)])
