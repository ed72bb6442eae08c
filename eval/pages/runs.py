"""Evaluation runs: the list with the "New run" form, and one run."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render

from eval import access
from eval.evaluation.reviews.rubrics import default_rubric
from eval.evaluation.runs import baselines
from eval.evaluation.runs import status as run_status
from eval.evaluation.runs.report import dataset_json
from eval.jobs import prompt_templates, states
from eval.models import LLMJob, Rubric, Run, Task
from eval.pages.common import page, providers_json
from eval.providers import catalogue

RUN_FAILURES_SHOWN = 50


RUN_FIRINGS_SHOWN = 20
# The runs a "Judge two runs" form offers as A and B, newest first.
JUDGED_RUNS_SHOWN = 200
RUBRICS_SHOWN = 100


def _check_runs_access(user):
    """Reviewers may look at runs; staff and holders of eval.launch_run also create, launch and cancel."""
    if not access.may_see_runs(user):
        raise PermissionDenied("Evaluation runs are for reviewers: ask an admin to add you to the reviewers group.")


@page
def runs(request):
    """The runs list and the "New run" form; both drawn by runs.js from /api/runs."""
    _check_runs_access(request.user)
    # Per source and status, the tasks a run would select (not those gone from their
    # source), and per status those gone, to take off the live count of /api/tasks.
    by_source, missing = {}, {}
    for row in Task.objects.values("source", "status", gone=Q(missing_since__isnull=False)).annotate(n=Count("id")):
        if row["gone"]:
            missing[row["status"]] = missing.get(row["status"], 0) + row["n"]
        else:
            by_source.setdefault(row["source"], {})[row["status"]] = row["n"]
    config = {
        "providers": providers_json(),
        "sources": dict(sorted(by_source.items())),  # {source: {status: n}}
        "missing": missing,  # {status: n}
        "confirm_cost_usd": float(settings.BULK_CONFIRM_COST_USD),
        "poll_interval_ms": settings.POLL_INTERVAL_MS,
    }
    context = {
        "config": config,
        "statuses": Task.Status.values,
        "time_zone": settings.TIME_ZONE,
        "prompt_templates": prompt_templates.choices(),
        "default_max_tokens": catalogue.DEFAULT_MAX_TOKENS,
    }
    if access.may_launch(request.user):
        config["judge"] = _judge_form()
    return render(request, "runs.html", context)


def _judged_json(run):
    """A run the judge form offers; ``ended``: no more outputs come (the status a read
    shows: its jobs may all have ended before the daemon stores done)."""
    status = run_status.shown(run)
    fields = {"id": run.pk, "name": run.name, "kind": run.kind, "provider": run.provider, "model": run.model}
    return {**fields, "status": status, "ended": status in Run.ENDED}


def _judge_form():
    """What the "Judge two runs" form offers: the runs a judge run may compare (generate
    and imported ones that have jobs), every model as the judge (judge-only ones
    included: only here) and the rubrics, the default first."""
    judged = (
        Run.objects.filter(kind__in=[Run.Kind.GENERATE, Run.Kind.IMPORTED])
        .exclude(status=Run.Status.SCHEDULED)
        .order_by("-id")
        .only("id", "name", "kind", "provider", "model", "status")[:JUDGED_RUNS_SHOWN]
    )
    default = default_rubric()
    rubrics = [default, *Rubric.objects.exclude(pk=default.pk).order_by("name", "-version")[:RUBRICS_SHOWN]]
    return {
        "runs": [_judged_json(run) for run in judged],
        "providers": providers_json(judges=True),
        "rubrics": [{"id": r.pk, "label": f"{r.name} v{r.version}"} for r in rubrics],
    }


@page
def run_detail(request, run_id):
    """One run: the frame, its failures and its firings; run.js polls /api/runs/<id> for the rest."""
    _check_runs_access(request.user)
    run = get_object_or_404(Run.objects.select_related("parent", "created_by", "dataset_version"), pk=run_id)
    failures = (
        LLMJob.objects.filter(run=run, status=states.FAILED)
        .select_related("task")
        .only("id", "task__id", "task__title", "task__external_id", "error_code", "error_message", "finished_at")
        .order_by("-finished_at")[:RUN_FAILURES_SHOWN]
    )
    user = request.user
    context = {
        "run": run,
        "status": run_status.shown(run),  # computed on read: a page stores nothing
        "failures": failures,
        "firings": run.firings.order_by("-id")[:RUN_FIRINGS_SHOWN],
        "can_cancel": access.may_cancel_run(user, run),
        "poll_interval_ms": settings.POLL_INTERVAL_MS,
        "dataset": dataset_json(run),
        "baseline": baselines.baseline_of(baselines.dataset_of(run)) if run.kind != Run.Kind.JUDGE else None,
    }
    return render(request, "run.html", context)
