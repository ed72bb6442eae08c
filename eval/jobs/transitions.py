"""Every change of a job's status, and nowhere else: here the moves that a
claim, a person and the daemon make (fenced by status); the worker's endings of
an attempt (fenced by worker and attempt too) are in endings.py.

Each transition is ONE conditional UPDATE matching the job's id and expected
status and, for a running job, the worker and attempt holding it, so a worker
whose lease expired can never touch the next attempt. Visible changes bump
``version`` (the poll's ETag). The allowed moves are in states.py:

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled
    running -> queued   (transient error, lease expired, hand-back, operator requeue)
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from eval.jobs import fields, outbox, states
from eval.jobs.errors import JobConflict, describe
from eval.jobs.sqlvalues import adapt
from eval.models import LLMJob

log = logging.getLogger(__name__)

QUEUED, RUNNING = states.QUEUED, states.RUNNING


# --- queued -> running --------------------------------------------------------------


def start_attempts(where, where_params, worker_id):
    """queued -> running for the rows ``where`` picks (SQL after the base
    filter: an id list, or an ORDER BY ... LIMIT). One UPDATE ... RETURNING
    over a sub-select; on PostgreSQL the sub-select takes FOR UPDATE SKIP
    LOCKED, so racing workers never wait on each other or claim the same row;
    on SQLite one statement is one write transaction. Returns raw rows
    (id, attempts, max_attempts, task_id, provider, model, params, available_at,
    prompt_text, kind, run_id, messages_sent)."""
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
        RETURNING id, attempts, max_attempts, task_id, provider, model, params, available_at, prompt_text, kind, run_id,
            messages_sent
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
            changed = LLMJob.objects.filter(id=job_id, status=QUEUED).update(**fields.bump(**fields.cancelled(now, by)))
        else:
            changed = LLMJob.objects.filter(id=job_id, status=RUNNING).update(
                **fields.bump(cancel_requested=True, cancel_requested_by=by, message=f"Cancelling (asked by {who})")
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
            **fields.bump(
                **fields.back_to_queue(now),
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


def cancel_queued_of_run(run_id, *, by=""):
    """A run's cancel: its queued jobs -> cancelled in ONE UPDATE (llmjob_run_status_idx),
    its running ones asked to stop (their workers end them). Returns how many queued ones."""
    now = timezone.now()
    who = by or "an operator"
    jobs = LLMJob.objects.filter(run_id=run_id)
    cancelled = jobs.filter(status=QUEUED).update(**fields.bump(**fields.cancelled(now, by)))
    jobs.filter(status=RUNNING, cancel_requested=False).update(
        **fields.bump(cancel_requested=True, cancel_requested_by=by, message=f"Cancelling (asked by {who})")
    )
    return cancelled


# --- leases that ran out (the daemon's repair) ------------------------------------------


def expire_leases(now=None, limit=None):
    """Running jobs whose worker stopped renewing the lease: running -> queued
    (attempts left) or running -> failed. Returns (requeued ids, failed count)."""
    now = now or timezone.now()
    expired = Q(status=RUNNING, lease_expires_at__lt=now)
    text = describe("lease_expired")
    failed = LLMJob.objects.filter(expired, attempts__gte=F("max_attempts")).update(
        **fields.bump(
            **fields.ended(now),
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
            **fields.bump(
                **fields.back_to_queue(now),
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
