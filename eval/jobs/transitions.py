"""Every change of a job's status, and nowhere else.

Each transition is ONE conditional UPDATE matching the job's id and expected
status and, for a running job, the worker and attempt holding it, so a worker
whose lease expired can never touch the next attempt. Visible changes bump
``version`` (the poll's ETag). The allowed moves are in states.py:

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled
    running -> queued   (transient error, lease expired, hand-back, operator requeue)
"""

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from eval.jobs import outbox, states
from eval.jobs.backoff import retry_delay
from eval.jobs.batch import MESSAGE_CHARS, held, update_held_many
from eval.jobs.errors import JobConflict, describe
from eval.jobs.sqlvalues import adapt
from eval.models import LLMJob

log = logging.getLogger(__name__)

QUEUED, RUNNING = states.QUEUED, states.RUNNING


def _bump(**values):
    """A visible change: stamp it and move ``version`` on."""
    values.setdefault("updated_at", timezone.now())
    values["version"] = F("version") + 1
    return values


def _back_to_queue(now, *, available_at=None):
    """The fields of a running job going back to the queue (every such edge)."""
    return {
        "status": QUEUED,
        "available_at": available_at or now,
        "worker_id": "",
        "lease_expires_at": None,
        "progress": 0,
        "output": "",
        "updated_at": now,
    }


def _ended(now, output=None):
    """The fields every end of a running attempt sets."""
    values = {"finished_at": now, "lease_expires_at": None, "updated_at": now}
    if output is not None:
        values["output"] = output
        values["output_hash"] = output_hash(output)
    return values


def _cancelled(now, by):
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


# --- queued -> running --------------------------------------------------------------


def start_attempts(where, where_params, worker_id):
    """queued -> running for the rows ``where`` picks (SQL after the base
    filter: an id list, or an ORDER BY ... LIMIT). One UPDATE ... RETURNING
    over a sub-select; on PostgreSQL the sub-select takes FOR UPDATE SKIP
    LOCKED, so racing workers never wait on each other or claim the same row;
    on SQLite one statement is one write transaction. Returns raw rows
    (id, attempts, max_attempts, task_id, provider, model, params, available_at,
    prompt_text, kind, run_id)."""
    now = timezone.now()
    table = LLMJob._meta.db_table
    lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    when = adapt(now)
    lease = adapt(now + timedelta(seconds=settings.JOB_LEASE_SECONDS))
    # MATERIALIZED: otherwise PostgreSQL may re-run the LIMITed sub-select
    # per row and claim more than asked.
    sql = f"""
        WITH picked AS MATERIALIZED (
            SELECT id FROM {table}
            WHERE status = %s AND available_at <= %s AND NOT cancel_requested
            {where} {lock}
        )
        UPDATE {table} SET
            status = %s, worker_id = %s, attempts = attempts + 1,
            lease_expires_at = %s, heartbeat_at = %s, started_at = %s, updated_at = %s,
            message = 'Waiting for ' || model, progress = 0, output = '',
            error_code = '', error_message = '', version = version + 1
        WHERE id IN (SELECT id FROM picked) AND status = %s
        RETURNING id, attempts, max_attempts, task_id, provider, model, params, available_at, prompt_text, kind, run_id
    """
    params = [QUEUED.value, when, *where_params, RUNNING.value, worker_id, lease, when, when, when, QUEUED.value]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- asked by people ------------------------------------------------------------------


def request_cancel(job_id, *, by=""):
    """Cancel a queued job at once (queued -> cancelled); ask the worker to stop
    a running one (it ends it with ``finish_cancel``). Returns the job."""
    who = by or "an operator"
    for _ in range(3):  # the status may move between our read and our write
        status = LLMJob.objects.filter(id=job_id).values_list("status", flat=True).first()
        if status is None:
            raise LLMJob.DoesNotExist(job_id)
        if not states.can_cancel(status):
            raise JobConflict(f"the job is already {status}")
        now = timezone.now()
        if status == QUEUED:
            changed = LLMJob.objects.filter(id=job_id, status=QUEUED).update(**_bump(**_cancelled(now, by)))
        else:
            changed = LLMJob.objects.filter(id=job_id, status=RUNNING).update(
                **_bump(cancel_requested=True, cancel_requested_by=by, message=f"Cancelling (asked by {who})")
            )
        if changed:
            return LLMJob.objects.get(id=job_id)
    raise JobConflict("the job changed state while being cancelled; try again")


def requeue(job_id):
    """Operator: put a queued or running job back in the queue now (e.g. its
    worker is known dead). The attempt is not consumed: one UPDATE gives it
    back when (and only when) the row it changes was running."""
    now = timezone.now()
    with transaction.atomic():
        changed = LLMJob.objects.filter(id=job_id, status__in=states.REQUEUEABLE).update(
            **_bump(
                **_back_to_queue(now),
                attempts=Case(
                    When(status=RUNNING, attempts__gt=0, then=F("attempts") - 1),
                    default=F("attempts"),
                    output_field=LLMJob._meta.get_field("attempts"),
                ),
                message="Requeued by an operator",
                published_at=outbox.published_at_on_queue(now),
            )
        )
        if changed:
            outbox.publish_on_commit([job_id])
    if not changed:
        raise JobConflict("only queued or running jobs can be requeued")
    return LLMJob.objects.get(id=job_id)


# --- endings of an attempt (the worker) ------------------------------------------------


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
            output_hash(r.output),
            r.stop_reason or "",
            r.input_tokens,
            r.output_tokens,
            None if r.cost is None else str(r.cost),
            *([json.dumps(r.check_results or {})] if checked else []),
        )
        for r in results
    ]
    columns = _SUCCESS_COLUMNS + ([("check_results", _json_type())] if checked else [])
    constants = {"status": states.SUCCEEDED.value, "progress": 100, "message": "Done", **_ended(now)}
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
            **_bump(
                **_ended(now, output),
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
            **_bump(
                **_ended(now, output),
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
                **_bump(
                    **_back_to_queue(now, available_at=now + timedelta(seconds=delay)),
                    error_code=code,
                    error_message=message or what,
                    message=f"{what}; retrying in {delay:.0f} s (attempt {attempt + 1} of {max_attempts or '?'})",
                )
            )
        )
        if changed:
            return QUEUED, delay
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
            **_bump(
                **_back_to_queue(now),
                attempts=F("attempts") - 1,
                message="Handed back by a stopping worker; waiting for another",
            )
        )
    )


# --- leases that ran out (the daemon's repair) ------------------------------------------


def expire_leases(now=None, limit=None):
    """Running jobs whose worker stopped renewing the lease: running -> queued
    (attempts left) or running -> failed. Returns (requeued ids, failed count)."""
    now = now or timezone.now()
    expired = Q(status=RUNNING, lease_expires_at__lt=now)
    text = describe("lease_expired")
    failed = LLMJob.objects.filter(expired, attempts__gte=F("max_attempts")).update(
        **_bump(
            **_ended(now),
            status=states.FAILED,
            error_code="lease_expired",
            error_message=text,
            message=f"Failed: {text}",
            worker_id="",
        )
    )
    with transaction.atomic():
        retryable = LLMJob.objects.filter(expired, attempts__lt=F("max_attempts"))
        ids = list(retryable.values_list("id", flat=True)[:limit])
        requeued = retryable.filter(id__in=ids).update(
            **_bump(
                **_back_to_queue(now),
                error_code="lease_expired",
                error_message=text,
                message=Concat(
                    Value("Worker lost; retrying (attempt "),
                    Cast(F("attempts") + 1, output_field=CharField()),
                    Value(")"),
                ),
                published_at=outbox.published_at_on_queue(now),
            )
        )
        if requeued:
            outbox.publish_on_commit(ids)
    if requeued or failed:
        log.warning("expired leases: %d requeued, %d failed", requeued, failed)
    return requeued, failed


def succeed_one(job_id, worker_id, attempt, **result):
    """running -> succeeded for one attempt: ``succeed`` with a list of one."""
    return job_id in succeed(worker_id, [Success(job_id, attempt, **result)])


def cancel_queued_of_run(run_id, *, by=""):
    """A run's cancel: its queued jobs -> cancelled in ONE UPDATE (llmjob_run_status_idx),
    its running ones asked to stop (their workers end them). Returns how many queued ones."""
    now = timezone.now()
    who = by or "an operator"
    jobs = LLMJob.objects.filter(run_id=run_id)
    cancelled = jobs.filter(status=QUEUED).update(**_bump(**_cancelled(now, by)))
    jobs.filter(status=RUNNING, cancel_requested=False).update(
        **_bump(cancel_requested=True, cancel_requested_by=by, message=f"Cancelling (asked by {who})")
    )
    return cancelled
