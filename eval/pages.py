"""HTML pages (the review console arrives with the web issue)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from eval.models import JobStatus, LLMJob, Task


@login_required
def home(request):
    counts = {status: LLMJob.objects.filter(status=status).count() for status in JobStatus.values}
    return render(request, "eval/home.html", {"task_count": Task.objects.count(), "job_counts": counts})
