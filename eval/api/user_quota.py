"""Limits on job creation, shared by every web process through the database.

The user's own job rows are the counter: jobs created in the last window
(``JOB_CREATE_RATE`` = (count, seconds)) and jobs still queued
(``MAX_QUEUED_JOBS_PER_USER``). No extra table, no cache to keep in step
(the cache is per process), and it holds across gunicorn processes and web VMs.

A count and the insert it admits must not interleave with another create of
the same user's, or a burst gets through on counts that are already stale:
30 parallel creates under a cap of 5 made 8 jobs (gunicorn defaults) and 18
(4 x 8 threads). So the check runs inside the creating transaction (create_job's
``admit``) and first takes a lock that only the same user's creates contend for.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from eval.api.errors import ApiError
from eval.jobs import states
from eval.models import LLMJob

QUEUED_CAP_RETRY_AFTER_S = 10


def lock_user_for_job_creation(user):
    """Hold ``user``'s job-creation lock until the current transaction ends.

    PostgreSQL: a FOR NO KEY UPDATE lock on the user's row. Creates of the same
    user queue on it; it does not conflict with the KEY SHARE locks that rows
    referencing the user take (the new job's own foreign key among them), nor
    with readers. READ COMMITTED gives each later statement a fresh snapshot,
    so the counts that follow see every job committed before the lock was ours.

    SQLite: one writer at a time, and every transaction here begins with BEGIN
    IMMEDIATE (settings: ``transaction_mode``), so the creating transaction
    already holds the database's write lock when it counts."""
    if not connection.in_atomic_block:
        raise RuntimeError("the job-creation lock needs the creating transaction (create_job's admit)")
    if connection.features.has_select_for_update:
        users = get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk)
        list(users.values_list("pk", flat=True))


def check_job_creation(user):
    """Raise ApiError rate_limited (with Retry-After) when ``user`` may not create a job now.
    A run's jobs do not count: runs answer to budgets (eval/evaluation/budget.py).
    Call it inside the transaction that inserts the job: it locks, then counts."""
    lock_user_for_job_creation(user)
    count, seconds = settings.JOB_CREATE_RATE
    now = timezone.now()
    since = now - timedelta(seconds=seconds)
    recent = list(
        LLMJob.objects.filter(created_by=user, created_at__gte=since, run__isnull=True)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:count]
    )
    if len(recent) >= count:
        # The window frees a slot when the oldest of the last `count` jobs ages out.
        wait = max(1, math.ceil((recent[-1] + timedelta(seconds=seconds) - now).total_seconds()))
        raise ApiError(
            "rate_limited",
            f"at most {count} jobs per {seconds} s; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    queued = LLMJob.objects.filter(created_by=user, status=states.QUEUED, run__isnull=True).count()
    if queued >= settings.MAX_QUEUED_JOBS_PER_USER:
        raise ApiError(
            "rate_limited",
            f"you already have {queued} queued jobs (the limit is {settings.MAX_QUEUED_JOBS_PER_USER}); "
            "wait for some to start",
            headers={"Retry-After": str(QUEUED_CAP_RETRY_AFTER_S)},
        )
