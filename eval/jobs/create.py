"""New jobs: create (with idempotency), retry, a run's bulk jobs and its
judge jobs. Every new job is built by ``new_job`` (the defaults a queued job
starts with) and is queued in its creating transaction, announced once that
commits (outbox.py)."""

import hashlib
import itertools
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from eval.jobs import outbox, prompt_templates, quota, states
from eval.jobs.errors import IdempotencyConflict, JobConflict
from eval.jobs.validation import clean_job_request, sent_chars
from eval.models import LLMJob, prompt_fingerprint
from eval.providers import catalogue, pricing

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _request_fingerprint(task, provider, model, params, template=None):
    raw = f"{task.pk}|{provider}|{model}|{sorted((params or {}).items())!r}"
    if template is not None:
        raw += f"|template={template.pk}"
    return hashlib.sha256(raw.encode()).hexdigest()


def new_job(*, provider, model, params, task=None, task_id=None, prompt_hash=None, now=None, **fields):
    """An unsaved queued job: the one place a new job's starting values are
    set. ``task`` or ``task_id`` with its ``prompt_hash``; ``fields`` are the
    rest (kind, priority, created_by, run, judged_a, ...)."""
    now = now or timezone.now()
    if task is not None:
        fields["task"] = task
        if prompt_hash is None:
            prompt_hash = task.prompt_hash or prompt_fingerprint(task.prompt, task.reference)
    else:
        fields["task_id"] = task_id
    return LLMJob(
        provider=provider,
        model=model,
        params=params,
        prompt_hash=prompt_hash,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        available_at=now,
        message=f"Queued for {model}",
        published_at=outbox.published_at_on_queue(now),
        **fields,
    )


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
    admit=None,
    template=None,
):
    """Validate and queue a job; publish it once the transaction commits.
    ``template`` (a PromptTemplate) renders what it sends; None sends the task as it is.

    Returns (job, created). With an idempotency key (scoped to the user for
    24 h), a replay of the same request returns the first job (created=False)
    and another body is refused. ``admit()`` runs only when a new job is about
    to be created (rate limits: a replay is never refused by them), inside the
    transaction that inserts it, so a limit that locks before it counts
    (eval/jobs/quota.py) holds the lock until the new row is committed. Every
    new job then reserves its estimate against its creator's daily budget in
    the same transaction (quota.reserve_job; BudgetExceeded refuses it)."""
    fingerprint = _request_fingerprint(task, provider, model, params, template) if idempotency_key else ""
    job = _requested_job(task, provider, model, params, template)
    if idempotency_key:
        existing = _idempotent_replay(created_by, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    job.created_by, job.priority, job.retry_of = created_by, priority, retry_of
    job.idempotency_key, job.idempotency_hash = idempotency_key, fingerprint
    try:
        with transaction.atomic():
            if admit is not None:
                admit()
            quota.reserve_job(job)
            job.save(force_insert=True)
            outbox.publish_on_commit([job.pk])
    except IntegrityError:
        # A racing request with the same key won: answer with its job.
        existing = _idempotent_replay(created_by, idempotency_key, fingerprint) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    log.info("job queued", extra={"job_id": job.pk, "task_id": task.pk, "provider": provider, "model": model})
    return job, True


def _requested_job(task, provider, model, params, template):
    """The unsaved job a request asks for: params cleaned (InvalidJob), messages rendered."""
    cleaned = clean_job_request(task=task, provider=provider, model=model, params=params)
    messages = prompt_templates.messages_for(task, template, cleaned.get("system", ""))
    return new_job(task=task, provider=provider, model=model, params=cleaned, template=template, messages_sent=messages)


def dry_run(*, task, provider, model, params=None, template=None):
    """What ``create_job`` with these arguments would cost at most, creating
    nothing (an Estimate of exactly what it would send, as its budget reservation
    counts it); refuses what it refuses (InvalidJob)."""
    job = _requested_job(task, provider, model, params, template)
    return pricing.estimate(catalogue.get(provider), model, [sent_chars(job)], job.params["max_tokens"])


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


def retry_job(job, *, by_user=None, admit=None):
    """A new job repeating a failed or cancelled one (terminal jobs never change)."""
    if not states.can_retry(job.status):
        raise JobConflict(f"only failed or cancelled jobs can be retried (this one is {job.status})")
    new_job, _ = create_job(
        task=job.task,
        provider=job.provider,
        model=job.model,
        params=job.params,
        created_by=by_user or job.created_by,
        priority=job.priority,
        retry_of=job,
        admit=admit,
        template=job.template,
    )
    return new_job


BULK_BATCH = 1000


def create_many(
    *, tasks, provider, model, params, messages=None, created_by=None, run=None, template=None, batch_size=BULK_BATCH
):
    """Queue one bulk job per task for a run: rows inserted ``batch_size`` at a
    time, one transaction per batch, each batch published once it commits (the
    outbox). ``tasks`` are (task_id, prompt_hash) pairs; ``params`` must already
    be clean (clean_job_request); ``messages`` maps each task id to what its job
    sends (prompt_templates.messages_for_tasks; rendered here when not given). No
    per-user cap or create rate applies, and the jobs reserve nothing themselves: the run reserved the budget for all of
    them at launch (eval/jobs/quota.py). Returns the number of jobs created.

    Why batches: one INSERT of 1,000 rows is a round trip instead of 1,000, and
    a transaction per batch keeps locks and WAL bursts short; a crash between
    batches leaves whole batches, each already announced."""
    if messages is None:
        tasks = list(tasks)
        messages = prompt_templates.messages_for_tasks([row[0] for row in tasks], template, params.get("system", ""))
    now = timezone.now()
    jobs = (
        new_job(
            task_id=task_id,
            prompt_hash=prompt_hash,
            provider=provider,
            model=model,
            params=params,
            created_by=created_by,
            run=run,
            priority=LLMJob.Priority.BULK,
            now=now,
            template=template,
            messages_sent=messages[task_id],
        )
        for task_id, prompt_hash in tasks
    )
    created = queue(jobs, batch_size=batch_size)
    log.info("jobs queued in bulk", extra={"count": created, "provider": provider, "model": model})
    return created


def queue(jobs, *, batch_size=BULK_BATCH):
    """Insert new jobs (``new_job``) ``batch_size`` at a time, one transaction
    per batch (a savepoint inside the caller's), each batch announced once it
    commits. ``jobs`` may be a generator: only a batch is held at a time.
    Returns how many."""
    jobs = iter(jobs)
    created = 0
    while batch := list(itertools.islice(jobs, batch_size)):
        with transaction.atomic():
            LLMJob.objects.bulk_create(batch)
            outbox.publish_on_commit([job.pk for job in batch])
        created += len(batch)
    return created
