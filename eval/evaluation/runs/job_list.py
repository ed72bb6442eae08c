"""A run's work, task by task: its jobs in keyset pages, narrowed by what a
reviewer looks for (issue 22 item 1; ``GET /api/runs/<id>/jobs``).

Pages are ordered by (task id, job id), so a row never jumps between pages
while the run goes on; the cursor is ``"<task id>.<job id hex>"`` of the last
row. Filters:

- ``failed_checks``: a job whose check results hold a failure (one
  ``__exact`` lookup per check of the run: the check names are lookup names);
- ``errors``: failed jobs;
- ``unreviewed``: jobs of tasks the caller has neither reviewed nor judged.
"""

import uuid

from django.db.models import Exists, OuterRef, Q

from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews.review_status import reviewed
from eval.jobs import states
from eval.models import LLMJob, Task

PAGE_SIZE = 50
FILTERS = ("failed_checks", "errors", "unreviewed")


def parse_cursor(text):
    """(task id, job uuid) from a cursor, or InvalidInput (field ``after``)."""
    task, _, job = (text or "").partition(".")
    try:
        task_id, job_id = int(task), uuid.UUID(hex=job)
    except ValueError:
        raise InvalidInput("after must be the `next` cursor of a previous page", field="after") from None
    if task_id < 1 or len(job) != 32:
        raise InvalidInput("after must be the `next` cursor of a previous page", field="after")
    return task_id, job_id


def cursor_of(row):
    return f"{row['task_id']}.{row['id'].hex}"


def _failed_checks(run):
    failed = Q(pk__in=[])
    for check in run.checks:
        failed |= Q(**{f"check_results__{check['type']}__exact": False})
    return failed


def selection(run, user, show=""):
    """The run's jobs under filter ``show`` ("" for all), in page order."""
    if show and show not in FILTERS:
        raise InvalidInput(f"show must be one of {', '.join(FILTERS)}", field="show")
    jobs = LLMJob.objects.filter(run_id=run.pk)
    if show == "failed_checks":
        jobs = jobs.filter(_failed_checks(run), status=states.SUCCEEDED)
    elif show == "errors":
        jobs = jobs.filter(status=states.FAILED)
    elif show == "unreviewed":
        jobs = jobs.exclude(Exists(Task.objects.filter(reviewed(user), pk=OuterRef("task_id"))))
    return jobs.order_by("task_id", "id")


def page(jobs, after=None, size=PAGE_SIZE):
    """(the queryset of one page, whether another follows is for the caller:
    it asks for ``size + 1``). ``after`` is a parsed cursor or None."""
    if after is not None:
        task_id, job_id = after
        jobs = jobs.filter(Q(task_id__gt=task_id) | Q(task_id=task_id, id__gt=job_id))
    return jobs[: size + 1]
