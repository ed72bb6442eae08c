"""The judgements behind a figure (``GET /api/judgements``, the /judgements/
page): current judgements (neither withdrawn nor superseded) of visible
outputs, as the results count them, narrowed by a JudgementFilter
(eval/evaluation/reviews/judgement_filters.py), newest first, in keyset pages
(``after`` = the last id of the previous page: rows never jump between pages).
Stale ones only with ``include_stale``, as in the results."""

from django.db.models import Q

from eval.evaluation.reviews.judgements import current, judgement_json
from eval.models import Judgement

PAGE_SIZE = 50


def _visible():
    """Neither output hidden (hidden jobs are left out of pairs and results, DESIGN)."""
    return Q(job_a__hidden=False) & (Q(job_b__isnull=True) | Q(job_b__hidden=False))


def _label(job):
    return f"{job.provider}/{job.model}" if job is not None else None


def listed(scope):
    """Current judgements of visible outputs that ``scope`` picks (stale ones too)."""
    return scope.apply(current(Judgement.objects.filter(_visible())))


def chosen(scope, *, include_stale=False, after=None, size=PAGE_SIZE, read=None):
    """(one page of Judgement rows, newest first, with their task, rubric, people and
    jobs; the next cursor or None).

    Staleness is decided here, on the rows read, not in SQL: as a condition
    (``judgement.prompt_hash = task.prompt_hash``) PostgreSQL estimates it at
    one row and hash-joins both whole tables (50 ms a page at 9,000 judgements
    and growing with them, measured: bench/judgements.py); without it a page is
    a backward scan of the primary key that stops at the page (3 ms). So rows
    are read a page at a time (``read``; each row with its related rows costs
    about 0.5 ms of Python, so not more) until a page of fresh ones is found."""
    rows = listed(scope).select_related("task", "rubric", "reviewer", "job_a", "job_b", "judge_job")
    rows = rows.defer(
        "task__prompt", "task__reference", "task__metadata", "task__messages", "job_a__output", "job_b__output"
    ).order_by("-id")
    found, last, read = [], after, read or size + 1
    while len(found) <= size:
        batch = list((rows.filter(id__lt=last) if last else rows)[:read])
        found += [j for j in batch if include_stale or j.prompt_hash == j.task.prompt_hash]
        if len(batch) < read:
            break
        last = batch[-1].pk
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
