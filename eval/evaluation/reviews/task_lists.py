"""The task list a reviewer browses, for the API (/api/tasks) and the task list
page alike: the search, each task's job counts and review mark, keyset pages."""

from django.db.models import Count, Q

from eval.evaluation.reviews import review_status
from eval.jobs import states
from eval.models import Task

PAGE_SIZE = 50


def search_tasks(*, status="", q=""):
    tasks = Task.objects.all()
    if status:
        tasks = tasks.filter(status=status)
    if q:
        tasks = tasks.filter(Q(title__icontains=q) | Q(external_id__icontains=q) | Q(prompt__icontains=q))
    return tasks


def with_job_counts(tasks, user):
    counts = {f"jobs_{status}": Count("jobs", filter=Q(jobs__status=status)) for status in states.ALL}
    return tasks.annotate(**counts, reviewed_by_me=review_status.reviewed(user))


def task_page(tasks, user, *, after=None, before=None, size=PAGE_SIZE):
    """One keyset page ordered by id: rows never jump between pages.

    Returns (tasks, next_cursor, prev_cursor); the cursors are task ids."""
    if before is not None:
        rows = list(with_job_counts(tasks.filter(id__lt=before), user).order_by("-id")[: size + 1])
        has_prev = len(rows) > size
        rows = rows[:size][::-1]
        has_next = True
    else:
        if after is not None:
            tasks = tasks.filter(id__gt=after)
        rows = list(with_job_counts(tasks, user).order_by("id")[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_prev = after is not None
    next_cursor = rows[-1].id if rows and has_next else None
    prev_cursor = rows[0].id if rows and has_prev else None
    return rows, next_cursor, prev_cursor
