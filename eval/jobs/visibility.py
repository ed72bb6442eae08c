"""Hiding a job from pages, pairs and results (kept; reversible). Not a state
change, but a visible one: it moves ``version`` so open pages see it."""

from django.db.models import F
from django.utils import timezone

from eval.models import LLMJob


def set_hidden(job_id, hidden):
    """Hide or unhide; returns whether the row changed."""
    now = timezone.now()
    return bool(
        LLMJob.objects.filter(pk=job_id)
        .exclude(hidden=hidden)
        .update(hidden=hidden, updated_at=now, version=F("version") + 1)
    )
