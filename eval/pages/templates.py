"""/templates/: prompt templates, an editor and a live preview of the unsaved draft
against a chosen task (templates.js talks to /api/templates; this view only draws
the frame and the task picker)."""

from django.db.models.functions import Substr
from django.http import Http404
from django.shortcuts import render

from eval import access
from eval.models import Task
from eval.pages.common import page

TASKS_OFFERED = 200


@page
def templates(request):
    if not access.is_reviewer(request.user):
        raise Http404("no such page")
    # Named as a reviewer knows them: source and external id, then the title (or, for
    # the many tasks without one, the start of the prompt): "#36" alone said nothing.
    tasks = (
        Task.objects.filter(missing_since__isnull=True)
        .order_by("id")
        .annotate(prompt_start=Substr("prompt", 1, 60))
        .values("id", "title", "source", "external_id", "prompt_start")[:TASKS_OFFERED]
    )
    return render(request, "prompt_templates.html", {"tasks": list(tasks)})
