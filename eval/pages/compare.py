"""Two runs task by task (/runs/compare?a=A&b=B): the frame, the two runs
chosen and the runs to choose from; compare.js draws the summary and the
rows from /api/runs/compare. Reviewers only: the page shows outputs."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from eval import access
from eval.evaluation.runs import baselines
from eval.models import Run
from eval.pages.common import integer, page

CHOICES_SHOWN = 100


@page
def compare(request):
    if not access.is_reviewer(request.user):
        raise PermissionDenied("Comparisons show outputs: they are for reviewers. Ask an admin to add you.")
    run_a = integer(request.GET.get("a", ""), "a")
    run_b = integer(request.GET.get("b", ""), "b")
    choices = list(
        Run.objects.exclude(kind=Run.Kind.JUDGE)
        .exclude(status=Run.Status.SCHEDULED)
        .only("id", "name", "provider", "model", "status")
        .order_by("-id")[:CHOICES_SHOWN]
    )
    if run_a is None and run_b is not None:  # from a run's page: A defaults to its dataset's baseline
        found = Run.objects.filter(pk=run_b).first()
        baseline = baselines.baseline_of(baselines.dataset_of(found)) if found else None
        run_a = baseline.pk if baseline and baseline.pk != run_b else None
    chosen = Run.objects.in_bulk([r for r in (run_a, run_b) if r is not None])
    for run in chosen.values():  # a run older than the list can still be chosen by its id
        if run not in choices:
            choices.append(run)
    context = {"run_a": chosen.get(run_a), "run_b": chosen.get(run_b), "choices": choices}
    return render(request, "compare.html", context)
