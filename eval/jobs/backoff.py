"""When the next attempt of a job may start."""

import random

from django.conf import settings


def retry_delay(attempt, retry_after=None):
    """Seconds before the next attempt: the provider's Retry-After when given,
    else exponential backoff with jitter; both capped by JOB_RETRY_MAX_DELAY_SECONDS."""
    cap = settings.JOB_RETRY_MAX_DELAY_SECONDS
    if retry_after is not None:
        return max(0.0, min(float(retry_after), cap))
    ceiling = min(cap, settings.JOB_RETRY_BASE_DELAY_SECONDS * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)
