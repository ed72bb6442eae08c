"""Who has seen a task's jobs (models, outputs side by side). A pairwise
verdict is blind only if its author had not, before the verdict."""

import threading

from django.db import connection

from eval.models import JobsSeen

# (user id, task id) pairs this process already recorded: rows are never
# deleted (but with their task or user), so a poll while a model streams costs
# no write after the first.
_known = set()
_known_lock = threading.Lock()
_KNOWN_MAX = 100_000


def mark(user_id, task_ids):
    """Record that ``user_id`` has loaded the jobs of ``task_ids`` (idempotent)."""
    new = [task_id for task_id in set(task_ids) if (user_id, task_id) not in _known]
    if not new or user_id is None:
        return
    JobsSeen.objects.bulk_create([JobsSeen(user_id=user_id, task_id=task_id) for task_id in new], ignore_conflicts=True)
    if connection.in_atomic_block:
        return  # the row may yet be rolled back: remember only what is committed
    with _known_lock:
        if len(_known) > _KNOWN_MAX:
            _known.clear()
        _known.update((user_id, task_id) for task_id in new)


def has_seen(user_id, task_id):
    return JobsSeen.objects.filter(user_id=user_id, task_id=task_id).exists()


def forget_cache():
    """Tests: the rows of a rolled-back test are gone; so must the cache be."""
    with _known_lock:
        _known.clear()
