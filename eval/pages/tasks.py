"""The task list and a task's review page."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from eval import access
from eval.evaluation.reviews import review_status, seen
from eval.evaluation.reviews.rubrics import rubric_for_source, rubric_json
from eval.evaluation.reviews.task_lists import search_tasks, task_page
from eval.jobs import prompt_templates
from eval.models import Review, Task
from eval.pages.common import choice, cursor, page, providers_json, query
from eval.providers import catalogue

REVIEW_TABS = [
    ("", "All"),
    ("needed", "To review"),
    ("mine", "Reviewed by me"),
    ("stale", "Needs re-review"),
]


@page
def task_list(request):
    user = request.user
    status = choice(request, "status", Task.Status.values)
    review = choice(request, "review", review_status.FILTERS)
    q = request.GET.get("q", "").strip()
    context = {"q": q, "status": status, "statuses": Task.Status.values}
    if access.is_reviewer(user):
        context.update(_task_rows(request, search_tasks(status=status, q=q), review))
        context["tabs"] = [
            {"value": value, "label": label, "query": query(q=q, status=status, review=value)}
            for value, label in REVIEW_TABS
        ]
        context.update(review=review, filter_query=query(q=q, status=status, review=review))
    return render(request, "eval/task_list.html", context)


def _task_rows(request, tasks, review):
    """One page of ``tasks`` narrowed by the review filter, and the caller's
    progress through all of ``tasks`` (the filter does not change the total)."""
    user = request.user
    shown = review_status.filter_tasks(tasks, user, review).annotate(stale=review_status.stale(user))
    rows, next_cursor, prev_cursor = task_page(
        shown, user, after=cursor(request, "after"), before=cursor(request, "before")
    )
    total = tasks.count()
    reviewed = tasks.filter(review_status.reviewed(user)).count()
    return {
        "tasks": rows,
        "next_cursor": next_cursor,
        "prev_cursor": prev_cursor,
        "total": total,
        "reviewed": reviewed,
        "percent": round(100 * reviewed / total) if total else 0,
    }


@page
def review(request, task_id):
    if not access.is_reviewer(request.user):
        raise Http404("no such task")
    task = get_object_or_404(Task, pk=task_id)
    previous = Task.objects.filter(id__lt=task.id).order_by("-id").values_list("id", flat=True).first()
    following = Task.objects.filter(id__gt=task.id).order_by("id").values_list("id", flat=True).first()
    providers = providers_json()  # judge-only models judge judge runs: no run button here
    my_review = Review.objects.filter(task=task, reviewer=request.user).first()
    seen.mark_task(request.user.pk, task.pk)  # the page shows each output with its model: none is blind now
    return render(
        request,
        "review.html",
        {
            "task": task,
            "previous_id": previous,
            "next_id": following,
            "next_to_review_id": review_status.next_to_review(request.user, task.pk),
            "providers": providers,
            "prompt_templates": prompt_templates.choices(),
            "review": my_review,
            "rubric": rubric_json(rubric_for_source(task.source)),
            "ratings": range(1, 6),
            "poll_interval_ms": settings.POLL_INTERVAL_MS,
            "judgement_undo_seconds": settings.JUDGEMENT_UNDO_SECONDS,
            "default_max_tokens": catalogue.DEFAULT_MAX_TOKENS,
            "max_notes_chars": Review.MAX_NOTES_CHARS,
        },
    )
