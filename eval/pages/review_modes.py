"""Blind pairs and the staff dashboard: frames their scripts fill from the API."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from eval import access, alerts
from eval.models import Task
from eval.pages.common import page


@page
def dashboard(request):
    if not access.is_staff(request.user):
        raise PermissionDenied("The dashboard is for staff. Ask an admin if you need it.")
    context = {"poll_interval_ms": settings.POLL_INTERVAL_MS, "alerts": alerts.active_alerts()}
    return render(request, "eval/dashboard.html", context)


@page
def pairs(request):
    """Blind pairwise comparison. The frame names nothing about any pair: the
    script asks /api/pairs/next for texts and an opaque token."""
    if not access.is_reviewer(request.user):
        raise PermissionDenied("Blind pairs are for reviewers: ask an admin to add you to the reviewers group.")
    sources = list(Task.objects.order_by("source").values_list("source", flat=True).distinct())
    source = request.GET.get("source", "")
    return render(
        request,
        "pairs.html",
        {"sources": sources, "source": source if source in sources else ""},
    )
