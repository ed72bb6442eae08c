"""Limits on job creation, shared by every web process through the database.

The user's own job rows are the counter: jobs created in the last window
(``JOB_CREATE_RATE`` = (count, seconds)) and jobs still queued
(``MAX_QUEUED_JOBS_PER_USER``). No extra table, no cache to keep in step,
and it holds across gunicorn processes and web VMs.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from eval.api.errors import ApiError
from eval.jobs import states
from eval.models import LLMJob

QUEUED_CAP_RETRY_AFTER_S = 10


def check_job_creation(user):
    """Raise ApiError rate_limited (with Retry-After) when ``user`` may not create a job now.
    A run's jobs do not count: runs answer to budgets (eval/evaluation/budget.py)."""
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
