"""Who has seen which output together with its model.

Blind is a fact about the reviewer, not a flag of the request: once a user
has been shown an output with its model (the review page, job JSON, the
reveal after a pair's verdict), no pair with that output is served to them
blind, and a pairwise verdict of theirs on it is stored ``blind: false``.
An output is recognised by its text as well as by its job: a newer job of
the same task with the same text (a deterministic model run again) is as
known as the one that was seen.

Every read that shows models records it here with at most one INSERT
(``INSERT ... ON CONFLICT DO NOTHING`` through ``bulk_create``); these rows
and pair assignments are the only writes a GET makes.
"""

import threading

from django.db import connection
from django.utils import timezone

from eval.models import LLMJob, ModelSeen
from eval.sync.outputs import PROVIDER as IMPORTED

# (user id, job id) pairs this process already recorded: rows are never
# deleted (but with their job or user), so a poll while a model streams costs
# no write after the first.
_known = set()
_known_lock = threading.Lock()
_KNOWN_MAX = 100_000


def mark_jobs(user_id, job_ids):
    """Record that ``user_id`` was shown the outputs of ``job_ids`` with their models (idempotent)."""
    if user_id is None:
        return
    new = [job_id for job_id in set(job_ids) if (user_id, str(job_id)) not in _known]
    if not new:
        return
    ModelSeen.objects.bulk_create([ModelSeen(user_id=user_id, job_id=job_id) for job_id in new], ignore_conflicts=True)
    if connection.in_atomic_block:
        return  # the rows may yet be rolled back: remember only what is committed
    with _known_lock:
        if len(_known) > _KNOWN_MAX:
            _known.clear()
        _known.update((user_id, str(job_id)) for job_id in new)


def mark_selected(user_id, job_ids):
    """Record that ``user_id`` was shown the outputs of every job ``job_ids``
    selects, with their models: one ``INSERT ... SELECT`` however many there are
    (an export). ``job_ids``: a queryset of ``values(seen_job=...)`` rows."""
    if user_id is None:
        return
    select, params = job_ids.query.sql_with_params()
    table, quote = ModelSeen._meta.db_table, connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(table)} (user_id, job_id, first_seen_at) "
            f"SELECT %s, shown.seen_job, %s FROM ({select}) AS shown WHERE shown.seen_job IS NOT NULL "
            "ON CONFLICT DO NOTHING",
            [user_id, now, *params],
        )


def mark_task(user_id, task_id):
    """Record that ``user_id`` was shown every job of ``task_id`` (the review page)."""
    if user_id is None:
        return
    mark_jobs(user_id, LLMJob.objects.filter(task_id=task_id).order_by().values_list("id", flat=True))


class Known:
    """The outputs one user knows the model of: by job id (a UUID), and by (task, output text)."""

    def __init__(self, rows):
        self.jobs = set()
        self.texts = set()
        for job_id, task_id, output_hash in rows:
            self.jobs.add(job_id)
            if output_hash:
                self.texts.add((task_id, output_hash))

    def output(self, job_id, task_id, output_hash):
        return job_id in self.jobs or (bool(output_hash) and (task_id, output_hash) in self.texts)

    def job(self, job):
        return self.output(job.pk, job.task_id, job.output_hash)


def known(user_id, task_ids=None):
    """What ``user_id`` knows (limited to ``task_ids`` when given)."""
    rows = ModelSeen.objects.filter(user_id=user_id)
    if task_ids is not None:
        rows = rows.filter(job__task_id__in=task_ids)
    return Known(rows.values_list("job_id", "job__task_id", "job__output_hash"))


def authored(user_id, provider, created_by_id):
    """An output produced elsewhere that ``user_id`` uploaded with its label (a
    dataset's ``outputs``): they had it, and its model, before any page showed it."""
    return provider == IMPORTED and user_id is not None and created_by_id == user_id


def knows_any(user_id, jobs):
    """True if ``user_id`` has seen the model of any of ``jobs`` (LLMJob rows of one task or more)."""
    if not jobs:
        return False
    what = known(user_id, {job.task_id for job in jobs})
    return any(what.job(job) or authored(user_id, job.provider, job.created_by_id) for job in jobs)


def forget_cache():
    """Tests: the rows of a rolled-back test are gone; so must the cache be."""
    with _known_lock:
        _known.clear()
