"""The staff results page: its frame and filters."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from eval import access
from eval.models import Run, Task
from eval.pages.common import integer, page, query

RESULTS_RUNS_SHOWN = 50


def _results_filters(request):
    """The results filters from the query string, and /api/results's query for them."""
    sources = list(Task.objects.order_by("source").values_list("source", flat=True).distinct())
    source = request.GET.get("source", "")
    source = source if source in sources else ""
    raw = ",".join(request.GET.getlist("runs"))
    chosen = (integer(part.strip(), "runs") for part in raw.split(","))
    run_ids = sorted({run_id for run_id in chosen if run_id is not None})
    stale = request.GET.get("include_stale") == "1"
    by_template = request.GET.get("group_by") == "template" and not run_ids  # rows per model and template version
    api_query = query(
        source=source,
        runs=",".join(map(str, run_ids)),
        include_stale="1" if stale else "",
        group_by="template" if by_template else "",
    )
    return {
        "export_query": query(
            source=source, runs=",".join(map(str, run_ids)), include_stale="true" if stale else ""
        ),  # the downloads carry the filters
        "sources": sources,
        "source": source,
        "run_ids": run_ids,
        "include_stale": stale,
        "by_template": by_template,
        "api_query": api_query,
    }


@page
def results(request):
    """Ratings, win rates, position bias and agreement: the frame and its filters;
    results.js draws the tables and charts from /api/results."""
    if not access.is_staff(request.user):
        raise PermissionDenied("The results page is for staff. Ask an admin if you need it.")
    context = _results_filters(request)
    # Runs with outputs to compare: generated here, or imported with a dataset.
    output_runs = Run.objects.filter(kind__in=[Run.Kind.GENERATE, Run.Kind.IMPORTED]).exclude(
        status=Run.Status.SCHEDULED
    )
    context["runs"] = output_runs.only("id", "name", "provider", "model", "status").order_by("-id")[:RESULTS_RUNS_SHOWN]
    return render(request, "results.html", context)
