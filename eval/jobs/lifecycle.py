"""The job lifecycle: the one place that changes an LLMJob's state.

Every transition is a single conditional UPDATE that matches the job's id and
expected status and, for a running job, the worker and attempt holding it, so
a worker whose lease expired can never touch the next attempt. Visible changes
bump ``version`` (the poll's ETag).

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled
    running -> queued   (transient error, lease expired, hand-back)
"""

import hashlib
import json
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from eval.jobs import errors
from eval.jobs.errors import IdempotencyConflict, JobConflict
from eval.jobs.validation import clean_job_request
from eval.models import TERMINAL_STATUSES, JobStatus, LLMJob, Task

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
QUEUED, RUNNING = JobStatus.QUEUED, JobStatus.RUNNING


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run one attempt; (id, worker_id, attempt) is its fence."""

    id: object
    attempt: int
    max_attempts: int
    task_id: int
    provider: str
    model: str
    prompt: str
    params: dict = field(default_factory=dict)
    queued_at: object = None  # when it became claimable (queue-wait metric)

    @property
    def max_tokens(self):
        return self.params.get("max_tokens", 1024)


@dataclass(frozen=True)
class ClaimOutcome:
    job: ClaimedJob | None
    # Why nothing was claimed: missing, terminal, running, not_yet (see available_at)
    reason: str = ""
    available_at: object = None


def _bump(**values):
    values.setdefault("updated_at", timezone.now())
    values["version"] = F("version") + 1
    return values


def _held(job_id, worker_id, attempt):
    return LLMJob.objects.filter(id=job_id, status=RUNNING, worker_id=worker_id, attempts=attempt)


def _hash(text):
    return hashlib.sha256(text.encode()).hexdigest() if text else ""


# --- creation -------------------------------------------------------------------


def _request_fingerprint(task, provider, model, params):
    raw = f"{task.pk}|{provider}|{model}|{sorted((params or {}).items())!r}"
    return hashlib.sha256(raw.encode()).hexdigest()


def create_job(
    *,
    task,
    provider,
    model,
    params=None,
    created_by=None,
    priority=LLMJob.Priority.INTERACTIVE,
    idempotency_key="",
    retry_of=None,
):
    """Validate and queue a job; publish it once the transaction commits.

    Returns (job, created). With an idempotency key, a replay of the same
    request returns the first job (created=False); another body is refused.
    """
    backend, info, cleaned = clean_job_request(task=task, provider=provider, model=model, params=params)
    fingerprint = _request_fingerprint(task, provider, model, params) if idempotency_key else ""
    if idempotency_key:
        existing = _idempotent_replay(created_by, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False

    now = timezone.now()
    on_db_transport = settings.JOB_TRANSPORT == "db"
    job = LLMJob(
        task=task,
        provider=provider,
        model=model,
        params=cleaned,
        created_by=created_by,
        priority=priority,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        available_at=now,
        message=f"Queued for {model}",
        idempotency_key=idempotency_key,
        idempotency_hash=fingerprint,
        retry_of=retry_of,
        # The db transport needs no message: the job is "published" by committing.
        published_at=now if on_db_transport else None,
    )
    try:
        with transaction.atomic():
            job.save(force_insert=True)
            _publish_on_commit([job.pk])
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = _idempotent_replay(created_by, idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing, False
    log.info("job queued", extra={"job_id": job.pk, "task_id": task.pk, "provider": provider, "model": model})
    return job, True


def _idempotent_replay(user, key, fingerprint):
    existing = LLMJob.objects.filter(created_by=user, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
        # The key has expired: free it for this new request.
        LLMJob.objects.filter(pk=existing.pk).update(idempotency_key="")
        return None
    if existing.idempotency_hash != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request")
    return existing


def _publish_on_commit(job_ids):
    """Announce jobs once the transaction that queued them commits."""
    from eval.transports import notify_workers, publish_jobs

    if settings.JOB_TRANSPORT == "db":
        # NOTIFY inside the transaction is delivered at COMMIT: one round trip less.
        notify_workers()
    else:
        transaction.on_commit(lambda: publish_jobs(job_ids))


def retry_job(job, *, by_user=None):
    """A new job repeating a failed or cancelled one (terminal jobs never change)."""
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobConflict(f"only failed or cancelled jobs can be retried (this one is {job.status})")
    new_job, _ = create_job(
        task=job.task,
        provider=job.provider,
        model=job.model,
        params=job.params,
        created_by=by_user or job.created_by,
        priority=job.priority,
        retry_of=job,
    )
    return new_job


# --- cancellation (asked by people) --------------------------------------------


def request_cancel(job_id, *, by=""):
    """Cancel a queued job at once; ask the worker to stop a running one."""
    who = by or "an operator"
    for _ in range(3):  # the status may move between our read and our write
        status = LLMJob.objects.filter(id=job_id).values_list("status", flat=True).first()
        if status is None:
            raise LLMJob.DoesNotExist(job_id)
        if status in TERMINAL_STATUSES:
            raise JobConflict(f"the job is already {status}")
        now = timezone.now()
        if status == QUEUED:
            changed = LLMJob.objects.filter(id=job_id, status=QUEUED).update(
                **_bump(
                    status=JobStatus.CANCELLED,
                    cancel_requested=True,
                    cancel_requested_by=by,
                    message=f"Cancelled by {who}",
                    finished_at=now,
                    updated_at=now,
                )
            )
        else:
            changed = LLMJob.objects.filter(id=job_id, status=RUNNING).update(
                **_bump(cancel_requested=True, cancel_requested_by=by, message=f"Cancelling (asked by {who})")
            )
        if changed:
            return LLMJob.objects.get(id=job_id)
    raise JobConflict("the job changed state while being cancelled; try again")


# --- claiming (workers) ---------------------------------------------------------


def claim_next(worker_id, limit):
    """Claim up to ``limit`` queued jobs, interactive first (db transport).

    One UPDATE ... RETURNING over a sub-select, then one read of the prompts.
    PostgreSQL: the sub-select takes FOR UPDATE SKIP LOCKED, so racing workers
    never wait on each other or claim the same row. SQLite: one statement is
    one write transaction, so claims are serialised.
    """
    if limit <= 0:
        return []
    return _claim_where("ORDER BY priority DESC, available_at, created_at LIMIT %s", [limit], worker_id)


def claim_many(job_ids, worker_id):
    """Claim the claimable jobs among ``job_ids`` in one statement (pubsub
    transport: messages that arrive together). Returns {job_id: ClaimOutcome}
    for every id asked, explaining the ones not claimed."""
    job_ids = list(dict.fromkeys(_as_uuid(job_id) for job_id in job_ids))
    if not job_ids:
        return {}
    postgres = connection.vendor == "postgresql"
    ids = [job_id if postgres else _uuid_hex(job_id) for job_id in job_ids]
    where = f"AND id IN ({', '.join(['%s'] * len(ids))})"
    claimed = {job.id: ClaimOutcome(job) for job in _claim_where(where, ids, worker_id, pick_filter=True)}
    missing = [job_id for job_id in job_ids if job_id not in claimed]
    return {**claimed, **{job_id: _why_not_claimed(job_id) for job_id in missing}}


def _claim_where(tail, tail_params, worker_id, pick_filter=False):
    now = timezone.now()
    table = LLMJob._meta.db_table
    lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    when = _adapt(now)
    lease = _adapt(now + timedelta(seconds=settings.JOB_LEASE_SECONDS))
    # MATERIALIZED: otherwise PostgreSQL may re-run the LIMITed sub-select
    # per row and claim more than asked.
    sql = f"""
        WITH picked AS MATERIALIZED (
            SELECT id FROM {table}
            WHERE status = %s AND available_at <= %s AND NOT cancel_requested
            {tail} {lock}
        )
        UPDATE {table} SET
            status = %s, worker_id = %s, attempts = attempts + 1,
            lease_expires_at = %s, heartbeat_at = %s, started_at = %s, updated_at = %s,
            message = 'Waiting for ' || model, progress = 0, output = '',
            error_code = '', error_message = '', version = version + 1
        WHERE id IN (SELECT id FROM picked) AND status = %s
        RETURNING id, attempts, max_attempts, task_id, provider, model, params, available_at
    """
    params = [QUEUED.value, when, *tail_params, RUNNING.value, worker_id, lease, when, when, when, QUEUED.value]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return []
    prompts = dict(Task.objects.filter(id__in={row[3] for row in rows}).values_list("id", "prompt"))
    return [
        ClaimedJob(
            id=_as_uuid(job_id),
            attempt=attempts,
            max_attempts=max_attempts,
            task_id=task_id,
            provider=provider,
            model=model,
            prompt=prompts[task_id],
            params=json.loads(params) if isinstance(params, str | bytes) else (params or {}),
            queued_at=_as_datetime(available_at),
        )
        for job_id, attempts, max_attempts, task_id, provider, model, params, available_at in rows
    ]


def claim(job_id, worker_id):
    """Claim one job by id. Never raises for a stale id."""
    return claim_many([job_id], worker_id)[_as_uuid(job_id)]


def _why_not_claimed(job_id):
    row = LLMJob.objects.filter(id=job_id).values("status", "available_at", "cancel_requested").first()
    if row is None:
        return ClaimOutcome(None, "missing")
    if row["status"] in TERMINAL_STATUSES:
        return ClaimOutcome(None, "terminal")
    if row["status"] == RUNNING:
        return ClaimOutcome(None, "running")
    return ClaimOutcome(None, "not_yet", available_at=row["available_at"])


# --- while running --------------------------------------------------------------


@dataclass
class ProgressUpdate:
    job_id: object
    attempt: int
    progress: int
    message: str
    output: str
    output_tokens: int


def record_progress(worker_id, updates):
    """Write many jobs' progress in ONE statement and renew their leases.

    Returns the ids this worker no longer holds (lease lost)."""
    if not updates:
        return set()
    now = timezone.now()
    lease = now + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    written = _update_held_many(
        worker_id,
        [(u.job_id, u.attempt, min(u.progress, 99), u.message[:300], u.output, u.output_tokens) for u in updates],
        columns=[("progress", "integer"), ("message", "text"), ("output", "text"), ("output_tokens", "integer")],
        constants={"lease_expires_at": lease, "heartbeat_at": now, "updated_at": now},
    )
    return {u.job_id for u in updates} - written


def _update_held_many(worker_id, rows, *, columns, constants):
    """One UPDATE for many held jobs: ``rows`` are (job_id, attempt, *values of
    ``columns``); each row is fenced like ``_held`` (id, running, worker,
    attempt) and bumps ``version``. Returns the ids written.

    Building one ORM update per job costs ~0.8 ms of Python each; a worker
    with 200 jobs in flight would spend a good part of a core on that."""
    table = LLMJob._meta.db_table
    postgres = connection.vendor == "postgresql"
    kinds = ["uuid", "integer"] + [kind for _, kind in columns]
    # PostgreSQL cannot infer the types of a VALUES list of parameters.
    row_sql = "(" + ", ".join(f"%s::{kind}" if postgres else "%s" for kind in kinds) + ")"
    names = ["job_id", "attempt"] + [name for name, _ in columns]
    params = []
    for job_id, *rest in rows:
        params.append(job_id if postgres else _uuid_hex(job_id))
        params.extend(rest)
    assignments = [f"{name} = v.{name}" for name, _ in columns]
    assignments += [f"{name} = %s" for name in constants]
    assignments.append("version = j.version + 1")
    params += [_adapt(value) for value in constants.values()]
    sql = (
        f"WITH v({', '.join(names)}) AS (VALUES {', '.join([row_sql] * len(rows))}) "
        f"UPDATE {table} AS j SET {', '.join(assignments)} FROM v "
        "WHERE j.id = v.job_id AND j.status = %s AND j.worker_id = %s AND j.attempts = v.attempt "
        "RETURNING id"  # SQLite allows only the target table's bare columns here
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, RUNNING.value, worker_id])
        return {_as_uuid(row[0]) for row in cursor.fetchall()}


def _uuid_hex(value):
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex


def _as_uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _as_datetime(value):
    """A timestamp read by raw SQL (SQLite gives text) as an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _adapt(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def renew_leases(worker_id, held):
    """Extend the leases of [(job_id, attempt)] with no visible change (no version bump).

    Returns the ids this worker no longer holds."""
    if not held:
        return set()
    now = timezone.now()
    lease = now + timedelta(seconds=settings.JOB_LEASE_SECONDS)
    lost = set()
    with transaction.atomic():
        for job_id, attempt in held:
            if not _held(job_id, worker_id, attempt).update(lease_expires_at=lease, heartbeat_at=now):
                lost.add(job_id)
    return lost


def cancel_requests(worker_id):
    """Ids of this worker's running jobs that someone asked to cancel."""
    return set(
        LLMJob.objects.filter(worker_id=worker_id, status=RUNNING, cancel_requested=True).values_list("id", flat=True)
    )


# --- endings of an attempt --------------------------------------------------------


def succeed(job_id, worker_id, attempt, *, output, stop_reason, input_tokens=None, output_tokens=None, cost=None):
    now = timezone.now()
    return bool(
        _held(job_id, worker_id, attempt).update(
            **_bump(
                status=JobStatus.SUCCEEDED,
                progress=100,
                message="Done",
                output=output,
                output_hash=_hash(output),
                stop_reason=stop_reason or "",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost,
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        )
    )


def succeed_many(worker_id, results):
    """Record many successes in one statement: ``results`` are dicts with the
    keyword arguments of ``succeed`` plus ``job_id`` and ``attempt``.
    Returns the ids written (the others were no longer held)."""
    if not results:
        return set()
    now = timezone.now()
    rows = [
        (
            r["job_id"],
            r["attempt"],
            r["output"],
            _hash(r["output"]),
            r.get("stop_reason") or "",
            r.get("input_tokens"),
            r.get("output_tokens"),
            None if r.get("cost") is None else str(r["cost"]),
        )
        for r in results
    ]
    return _update_held_many(
        worker_id,
        rows,
        columns=[
            ("output", "text"),
            ("output_hash", "text"),
            ("stop_reason", "text"),
            ("input_tokens", "integer"),
            ("output_tokens", "integer"),
            ("cost_usd", "numeric"),
        ],
        constants={
            "status": JobStatus.SUCCEEDED.value,
            "progress": 100,
            "message": "Done",
            "finished_at": now,
            "lease_expires_at": None,
            "updated_at": now,
        },
    )


def fail(job_id, worker_id, attempt, *, code, message="", output="", input_tokens=None, output_tokens=None):
    now = timezone.now()
    text = message or errors.DESCRIPTIONS.get(code, code)
    return bool(
        _held(job_id, worker_id, attempt).update(
            **_bump(
                status=JobStatus.FAILED,
                message=f"Failed: {text}"[:300],
                error_code=code,
                error_message=text,
                output=output,
                output_hash=_hash(output),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        )
    )


def finish_cancel(job_id, worker_id, attempt, *, output="", output_tokens=None):
    """The worker stopped a running job whose cancel was requested."""
    now = timezone.now()
    return bool(
        _held(job_id, worker_id, attempt).update(
            **_bump(
                status=JobStatus.CANCELLED,
                message=Concat(Value("Cancelled by "), F("cancel_requested_by")),
                output=output,
                output_hash=_hash(output),
                output_tokens=output_tokens,
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        )
    )


def retry_delay(attempt, retry_after=None):
    """Seconds before the next attempt: the provider's Retry-After when given,
    else exponential backoff with jitter; both capped."""
    cap = settings.JOB_RETRY_MAX_DELAY_SECONDS
    if retry_after is not None:
        return max(0.0, min(float(retry_after), cap))
    ceiling = min(cap, settings.JOB_RETRY_BASE_DELAY_SECONDS * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def retry_later(job_id, worker_id, attempt, *, code, message="", retry_after=None, max_attempts=None):
    """A transient error: queue the next attempt after a backoff, or fail when
    attempts are used up. Returns (status, delay_seconds) or (None, None) if
    this worker no longer held the job."""
    if max_attempts is not None and attempt >= max_attempts:
        ok = fail(job_id, worker_id, attempt, code=code, message=message)
        return (JobStatus.FAILED, None) if ok else (None, None)
    delay = retry_delay(attempt, retry_after)
    now = timezone.now()
    what = errors.DESCRIPTIONS.get(code, code)
    changed = (
        _held(job_id, worker_id, attempt)
        .filter(attempts__lt=F("max_attempts"))
        .update(
            **_bump(
                status=QUEUED,
                available_at=now + timedelta(seconds=delay),
                worker_id="",
                lease_expires_at=None,
                progress=0,
                output="",
                error_code=code,
                error_message=message or what,
                message=f"{what}; retrying in {delay:.0f} s (attempt {attempt + 1} of {max_attempts or '?'})",
                updated_at=now,
            )
        )
    )
    if changed:
        return JobStatus.QUEUED, delay
    if _held(job_id, worker_id, attempt).exists():  # attempts used up
        ok = fail(job_id, worker_id, attempt, code=code, message=message)
        return (JobStatus.FAILED, None) if ok else (None, None)
    return None, None


def hand_back(job_id, worker_id, attempt):
    """A stopping worker returns a job it could not finish; the attempt is not consumed."""
    now = timezone.now()
    return bool(
        _held(job_id, worker_id, attempt).update(
            **_bump(
                status=QUEUED,
                attempts=F("attempts") - 1,
                available_at=now,
                worker_id="",
                lease_expires_at=None,
                progress=0,
                output="",
                message="Handed back by a stopping worker; waiting for another",
                updated_at=now,
            )
        )
    )


# --- repairs (scheduled by the sync daemon) -----------------------------------------


def expire_leases(now=None):
    """Requeue running jobs whose worker stopped renewing its lease (or fail
    them when attempts are used up). Returns (requeued, failed)."""
    now = now or timezone.now()
    expired = Q(status=RUNNING, lease_expires_at__lt=now)
    text = errors.DESCRIPTIONS["lease_expired"]
    failed = LLMJob.objects.filter(expired, attempts__gte=F("max_attempts")).update(
        **_bump(
            status=JobStatus.FAILED,
            error_code="lease_expired",
            error_message=text,
            message=f"Failed: {text}",
            worker_id="",
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    )
    with transaction.atomic():
        ids = list(LLMJob.objects.filter(expired, attempts__lt=F("max_attempts")).values_list("id", flat=True))
        requeued = LLMJob.objects.filter(expired, id__in=ids, attempts__lt=F("max_attempts")).update(
            **_bump(
                status=QUEUED,
                available_at=now,
                worker_id="",
                lease_expires_at=None,
                progress=0,
                output="",
                error_code="lease_expired",
                error_message=text,
                message=Concat(
                    Value("Worker lost; retrying (attempt "),
                    Cast(F("attempts") + 1, output_field=CharField()),
                    Value(")"),
                ),
                published_at=now if settings.JOB_TRANSPORT == "db" else None,
                updated_at=now,
            )
        )
        if ids:
            _publish_on_commit(ids)
    if requeued or failed:
        log.warning("expired leases: %d requeued, %d failed", requeued, failed)
    return requeued, failed


def jobs_to_republish(now=None):
    """Queued jobs whose message was never published, or published so long ago
    that it must have been lost (pubsub transport only)."""
    if settings.JOB_TRANSPORT != "pubsub":
        return []
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_REPUBLISH_AFTER_SECONDS)
    return list(
        LLMJob.objects.filter(status=QUEUED)
        .filter(Q(published_at__isnull=True) | Q(published_at__lt=stale, available_at__lt=stale))
        .order_by("-priority", "created_at")
        .values_list("id", flat=True)[:1000]
    )


def republish_unpublished(now=None):
    from eval.transports import publish_jobs

    ids = jobs_to_republish(now)
    return publish_jobs(ids) if ids else 0


def mark_published(job_ids, now=None):
    """The transport delivered these jobs' messages (not a visible change)."""
    return LLMJob.objects.filter(id__in=job_ids, status=QUEUED).update(published_at=now or timezone.now())


def requeue(job_id):
    """Operator command: put a queued or running job back in the queue now
    (e.g. its worker is known dead). The attempt is not consumed."""
    now = timezone.now()
    with transaction.atomic():
        changed = LLMJob.objects.filter(id=job_id, status__in=[QUEUED, RUNNING]).update(
            **_bump(
                status=QUEUED,
                attempts=F("attempts") - (1 if _is_running(job_id) else 0),
                available_at=now,
                worker_id="",
                lease_expires_at=None,
                progress=0,
                output="",
                message="Requeued by an operator",
                published_at=now if settings.JOB_TRANSPORT == "db" else None,
                updated_at=now,
            )
        )
        if changed:
            _publish_on_commit([job_id])
    if not changed:
        raise JobConflict("only queued or running jobs can be requeued")
    return LLMJob.objects.get(id=job_id)


def _is_running(job_id):
    return LLMJob.objects.filter(id=job_id, status=RUNNING, attempts__gt=0).exists()
