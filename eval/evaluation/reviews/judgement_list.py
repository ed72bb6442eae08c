"""The judgements behind a figure (``GET /api/judgements``, the /judgements/
page): current judgements (neither withdrawn nor superseded) of visible
outputs, as the results count them, narrowed by a JudgementFilter
(eval/evaluation/reviews/judgement_filters.py), newest first, in keyset pages
(``after`` = the last id of the previous page: rows never jump between pages).
Stale ones only with ``include_stale``, as in the results."""

from django.db.models import F, Q

from eval.evaluation.reviews.judgements import current, judgement_json
from eval.models import Judgement

PAGE_SIZE = 50


def _visible():
    """Neither output hidden (hidden jobs are left out of pairs and results, DESIGN)."""
    return Q(job_a__hidden=False) & (Q(job_b__isnull=True) | Q(job_b__hidden=False))


def _label(job):
    return f"{job.provider}/{job.model}" if job is not None else None


def listed(scope, *, include_stale=False):
    rows = scope.apply(current(Judgement.objects.filter(_visible())))
    if not include_stale:
        rows = rows.filter(prompt_hash=F("task__prompt_hash"))
    return rows


def chosen(scope, *, include_stale=False, after=None, size=PAGE_SIZE):
    """(one page of Judgement rows, newest first, with their task, rubric, people and
    jobs; the next cursor or None)."""
    rows = listed(scope, include_stale=include_stale).select_related(
        "task", "rubric", "reviewer", "job_a", "job_b", "judge_job"
    )
    rows = rows.defer(
        "task__prompt", "task__reference", "task__metadata", "task__messages", "job_a__output", "job_b__output"
    )
    if after:
        rows = rows.filter(id__lt=after)
    found = list(rows.order_by("-id")[: size + 1])
    more = len(found) > size
    found = found[:size]
    return found, (found[-1].pk if more else None)


def page(scope, *, include_stale=False, after=None, size=PAGE_SIZE):
    """(rows as JSON, the next cursor or None)."""
    found, cursor = chosen(scope, include_stale=include_stale, after=after, size=size)
    return [item_json(judgement) for judgement in found], cursor


def item_json(judgement):
    """Judgement JSON (DESIGN), with what a list shows beside it: the task's title and
    source, each output's ``provider/model`` and run, in ``jobs`` order."""
    task = judgement.task
    jobs = [judgement.job_a] + ([judgement.job_b] if judgement.job_b_id else [])
    return {
        **judgement_json(judgement, task.prompt_hash),
        "task_title": task.title,
        "source": task.source,
        "models": [_label(job) for job in jobs],
        "runs": [job.run_id for job in jobs],
        "judge_run": judgement.judge_job.run_id if judgement.judge_job_id else None,
    }
