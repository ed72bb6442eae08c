"""Workers taking jobs: the claim (queued -> running, in transitions.py) and
what a worker needs to run the attempt it claimed."""

import enum
from dataclasses import dataclass, field

from django.utils import timezone

from eval.jobs import states, transitions
from eval.jobs.sqlvalues import as_datetime, as_json, as_uuid, uuid_param
from eval.models import LLMJob, Task
from eval.providers import catalogue


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
    # The task's conversation ([{"role", "content"}], system turn included) or None.
    messages: list | None = None
    # True: ``messages`` are the job's messages_sent, exactly what to send (system included).
    exact: bool = False
    queued_at: object = None  # when it became claimable (queue-wait metric)
    # What the success path needs to know without a query: a plain generate job
    # with no run ends with one statement; a judge or a run's job is finished by eval.evaluation.
    kind: str = "generate"
    run_id: int | None = None

    @property
    def max_tokens(self):
        return self.params.get("max_tokens", catalogue.DEFAULT_MAX_TOKENS)


class NotClaimed(enum.StrEnum):
    """Why a job asked for by id was not claimed."""

    MISSING = "missing"
    TERMINAL = "terminal"
    RUNNING = "running"  # live on a worker (maybe this one): its lease guards it
    NOT_YET = "not_yet"  # in retry backoff until ``available_at``


@dataclass(frozen=True)
class ClaimOutcome:
    job: ClaimedJob | None
    reason: NotClaimed | None = None
    available_at: object = None
    lease_expires_at: object = None  # RUNNING: until when its worker holds it (a dead one's runs out)


def claim_next(worker_id, limit):
    """Claim up to ``limit`` queued jobs, interactive first (db transport)."""
    if limit <= 0:
        return []
    rows = transitions.start_attempts("ORDER BY priority DESC, available_at, created_at LIMIT %s", [limit], worker_id)
    return _claimed_jobs(rows)


def claim_many(job_ids, worker_id):
    """Claim the claimable jobs among ``job_ids`` in one statement (pubsub
    transport: messages that arrive together). Returns {job_id: ClaimOutcome}
    for every id asked, explaining the ones not claimed."""
    job_ids = list(dict.fromkeys(as_uuid(job_id) for job_id in job_ids))
    if not job_ids:
        return {}
    where = f"AND id IN ({', '.join(['%s'] * len(job_ids))})"
    rows = transitions.start_attempts(where, [uuid_param(job_id) for job_id in job_ids], worker_id)
    claimed = {job.id: ClaimOutcome(job) for job in _claimed_jobs(rows)}
    return {job_id: claimed.get(job_id) or why_not_claimed(job_id) for job_id in job_ids}


def claim(job_id, worker_id):
    """Claim one job by id. Never raises for a stale id."""
    return claim_many([job_id], worker_id)[as_uuid(job_id)]


def _claimed_jobs(rows):
    if not rows:
        return []
    # A job made with its messages fixed (messages_sent) needs nothing of its task.
    needed = {row[3] for row in rows if not row[8] and row[11] is None}
    tasks = (
        {
            pk: (prompt, messages)
            for pk, prompt, messages in Task.objects.filter(id__in=needed).values_list("id", "prompt", "messages")
        }
        if needed
        else {}
    )
    return [_claimed(row, tasks) for row in rows]


def _claimed(row, tasks):
    (
        job_id,
        attempts,
        max_attempts,
        task_id,
        provider,
        model,
        params,
        available_at,
        prompt_text,
        kind,
        run_id,
        sent,
    ) = row
    sent = as_json(sent) if sent is not None else None
    if prompt_text:  # a judge's prompt
        prompt, messages = prompt_text, None
    elif sent:
        prompt, messages = sent[-1]["content"], sent
    else:  # a job from before messages_sent: the task as it is now
        prompt, messages = tasks[task_id]
    return ClaimedJob(
        id=as_uuid(job_id),
        attempt=attempts,
        max_attempts=max_attempts,
        task_id=task_id,
        provider=provider,
        model=model,
        prompt=prompt,
        messages=messages,
        exact=bool(sent),
        params=as_json(params),
        queued_at=as_datetime(available_at),
        kind=kind,
        run_id=run_id,
    )


def why_not_claimed(job_id):
    row = LLMJob.objects.filter(id=job_id).values("status", "available_at", "lease_expires_at").first()
    if row is None:
        return ClaimOutcome(None, NotClaimed.MISSING)
    if states.is_terminal(row["status"]):
        return ClaimOutcome(None, NotClaimed.TERMINAL)
    if row["status"] == states.RUNNING:
        return ClaimOutcome(None, NotClaimed.RUNNING, lease_expires_at=row["lease_expires_at"])
    return ClaimOutcome(None, NotClaimed.NOT_YET, available_at=row["available_at"])


def anything_queued():
    """Whether any job waits in the queue, due or not (``--once`` on the db transport)."""
    return LLMJob.objects.filter(status=states.QUEUED).exists()


def anything_claimable():
    """Whether a queued job is due now (``--once`` on pubsub: a message may still be on its way)."""
    return LLMJob.objects.filter(status=states.QUEUED, available_at__lte=timezone.now()).exists()
