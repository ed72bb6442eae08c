"""/templates/: prompt templates, an editor and a live preview of the unsaved draft
against a chosen task (templates.js talks to /api/templates; this view only draws
the frame and the task picker)."""

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
    tasks = Task.objects.filter(missing_since__isnull=True).order_by("id").values("id", "title")[:TASKS_OFFERED]
    return render(request, "prompt_templates.html", {"tasks": list(tasks)})
