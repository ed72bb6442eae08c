"""HTML pages: the task list, the review page, blind pairs, evaluation runs,
the staff results page, the staff dashboard, the API token page and the error pages. Job cards and pairs are
drawn and kept live by eval/static/eval/*.js from the JSON API; these views
only render the frame and the task text.

Every page refuses the query strings the API refuses (eval/api/request_data.py)
with a 400 page, never a 500: ``@page`` checks them before the view runs."""

import logging
from contextlib import contextmanager
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_POST

from eval import alerts
from eval.api.access import is_reviewer, is_staff
from eval.api.errors import ApiError
from eval.api.queries import search_tasks, task_page
from eval.api.request_data import check_query, query_integer
from eval.evaluation import review_status, seen
from eval.evaluation.rubrics import rubric_for_source, rubric_json
from eval.jobs import states
from eval.models import ApiToken, LLMJob, Review, Run, Task
from eval.providers import catalogue

logger = logging.getLogger(__name__)

MAX_TOKENS_PER_USER = 20
LAUNCH_RUN_PERMISSION = "eval.launch_run"
RUN_FAILURES_SHOWN = 50
RUN_FIRINGS_SHOWN = 20
RESULTS_RUNS_SHOWN = 50
REVIEW_TABS = [
    ("", "All"),
    ("needed", "To review"),
    ("mine", "Reviewed by me"),
    ("stale", "Needs re-review"),
]


class QueryRefused(BadRequest):
    """A query string a page will not read; its message says why and echoes no hostile text."""


@contextmanager
def _refused_as_bad_request():
    """The API's refusal of a query value (ApiError ``invalid``) as the page's 400."""
    try:
        yield
    except ApiError as error:
        raise QueryRefused(error.message) from None


def page(view):
    """A page for logged-in users whose whole query string, read or not, is text
    the database can take; any other is the 400 page (``bad_request``)."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        with _refused_as_bad_request():
            check_query(request.GET)
        return view(request, *args, **kwargs)

    return login_required(checked)


def _integer(text, name):
    """An id from the query string: None for anything but digits, a 400 beyond the database's range."""
    with _refused_as_bad_request():
        return query_integer(text, name)


def _cursor(request, name):
    return _integer(request.GET.get(name, ""), name)


def _choice(request, name, allowed):
    value = request.GET.get(name, "")
    return value if value in allowed else ""


def _query(**params):
    """A query string of the non-empty ``params`` (for links that keep the filters)."""
    return urlencode({name: value for name, value in params.items() if value})


@page
def task_list(request):
    user = request.user
    status = _choice(request, "status", Task.Status.values)
    review = _choice(request, "review", review_status.FILTERS)
    q = request.GET.get("q", "").strip()
    context = {"q": q, "status": status, "statuses": Task.Status.values, "reviewer": is_reviewer(user)}
    if context["reviewer"]:
        context.update(_task_rows(request, search_tasks(status=status, q=q), review))
        context["tabs"] = [
            {"value": value, "label": label, "query": _query(q=q, status=status, review=value)}
            for value, label in REVIEW_TABS
        ]
        context.update(review=review, filter_query=_query(q=q, status=status, review=review))
    return render(request, "eval/task_list.html", context)


def _task_rows(request, tasks, review):
    """One page of ``tasks`` narrowed by the review filter, and the caller's
    progress through all of ``tasks`` (the filter does not change the total)."""
    user = request.user
    shown = review_status.filter_tasks(tasks, user, review).annotate(stale=review_status.stale(user))
    rows, next_cursor, prev_cursor = task_page(
        shown, user, after=_cursor(request, "after"), before=_cursor(request, "before")
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
    if not is_reviewer(request.user):
        raise Http404("no such task")
    task = get_object_or_404(Task, pk=task_id)
    previous = Task.objects.filter(id__lt=task.id).order_by("-id").values_list("id", flat=True).first()
    following = Task.objects.filter(id__gt=task.id).order_by("id").values_list("id", flat=True).first()
    providers = [_provider_json(p) for p in catalogue.configured()]
    my_review = Review.objects.filter(task=task, reviewer=request.user).first()
    seen.mark(request.user.pk, [task.pk])  # from now on this reviewer's verdicts on the task are not blind
    return render(
        request,
        "review.html",
        {
            "task": task,
            "previous_id": previous,
            "next_id": following,
            "next_to_review_id": review_status.next_to_review(request.user, task.pk),
            "providers": providers,
            "review": my_review,
            "rubric": rubric_json(rubric_for_source(task.source)),
            "ratings": range(1, 6),
            "poll_interval_ms": settings.POLL_INTERVAL_MS,
            "judgement_undo_seconds": settings.JUDGEMENT_UNDO_SECONDS,
        },
    )


def _provider_json(entry):
    """A provider for the run buttons: its models, and prices so a paid launch can show its cost."""
    return {
        "name": entry.name,
        "label": entry.label,
        "demo": entry.demo,
        "max_temperature": entry.max_temperature,
        "models": [
            {"name": m.name, "max_tokens": m.max_tokens, "price": _price(entry, m.name)} for m in entry.models()
        ],
    }


def _price(entry, model):
    """[USD per million input tokens, per million output] or None (free or unknown)."""
    million = entry.cost(model, 1_000_000, 0), entry.cost(model, 0, 1_000_000)
    if None in million or not any(million):
        return None
    return [float(million[0]), float(million[1])]


@page
def dashboard(request):
    if not is_staff(request.user):
        raise PermissionDenied("The dashboard is for staff. Ask an admin if you need it.")
    context = {"poll_interval_ms": settings.POLL_INTERVAL_MS, "alerts": alerts.active_alerts()}
    return render(request, "eval/dashboard.html", context)


@page
def pairs(request):
    """Blind pairwise comparison. The frame names nothing about any pair: the
    script asks /api/pairs/next for texts and an opaque token."""
    if not is_reviewer(request.user):
        raise PermissionDenied("Blind pairs are for reviewers: ask an admin to add you to the reviewers group.")
    sources = list(Task.objects.order_by("source").values_list("source", flat=True).distinct())
    source = request.GET.get("source", "")
    return render(
        request,
        "pairs.html",
        {"sources": sources, "source": source if source in sources else ""},
    )


def _may_launch_runs(user):
    return is_staff(user) or user.has_perm(LAUNCH_RUN_PERMISSION)


def _check_runs_access(user):
    """Reviewers may look at runs; staff and holders of eval.launch_run also create, launch and cancel."""
    if not (is_reviewer(user) or _may_launch_runs(user)):
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
        "providers": [_provider_json(p) for p in catalogue.configured()],
        "sources": dict(sorted(by_source.items())),  # {source: {status: n}}
        "missing": missing,  # {status: n}
        "confirm_cost_usd": float(settings.BULK_CONFIRM_COST_USD),
        "poll_interval_ms": settings.POLL_INTERVAL_MS,
    }
    context = {
        "config": config,
        "can_launch": _may_launch_runs(request.user),
        "statuses": Task.Status.values,
        "time_zone": settings.TIME_ZONE,
    }
    return render(request, "runs.html", context)


@page
def run_detail(request, run_id):
    """One run: the frame, its failures and its firings; run.js polls /api/runs/<id> for the rest."""
    _check_runs_access(request.user)
    run = get_object_or_404(Run.objects.select_related("parent", "created_by"), pk=run_id)
    failures = (
        LLMJob.objects.filter(run=run, status=states.FAILED)
        .select_related("task")
        .only("id", "task__id", "task__title", "task__external_id", "error_code", "error_message", "finished_at")
        .order_by("-finished_at")[:RUN_FAILURES_SHOWN]
    )
    user = request.user
    context = {
        "run": run,
        "failures": failures,
        "firings": run.firings.order_by("-id")[:RUN_FIRINGS_SHOWN],
        "can_launch": _may_launch_runs(user),
        "can_cancel": is_staff(user) or (_may_launch_runs(user) and run.created_by_id == user.pk),
        "poll_interval_ms": settings.POLL_INTERVAL_MS,
    }
    return render(request, "run.html", context)


def _results_filters(request):
    """The results filters from the query string, and /api/results's query for them."""
    sources = list(Task.objects.order_by("source").values_list("source", flat=True).distinct())
    source = request.GET.get("source", "")
    source = source if source in sources else ""
    raw = ",".join(request.GET.getlist("runs"))
    chosen = (_integer(part.strip(), "runs") for part in raw.split(","))
    run_ids = sorted({run_id for run_id in chosen if run_id is not None})
    stale = request.GET.get("include_stale") == "1"
    api_query = _query(source=source, runs=",".join(map(str, run_ids)), include_stale="1" if stale else "")
    return {"sources": sources, "source": source, "run_ids": run_ids, "include_stale": stale, "api_query": api_query}


@page
def results(request):
    """Ratings, win rates, position bias and agreement: the frame and its filters;
    results.js draws the tables and charts from /api/results."""
    if not is_staff(request.user):
        raise PermissionDenied("The results page is for staff. Ask an admin if you need it.")
    context = _results_filters(request)
    generate_runs = Run.objects.filter(kind=Run.Kind.GENERATE).exclude(status=Run.Status.SCHEDULED)
    context["runs"] = generate_runs.only("id", "name", "provider", "model", "status").order_by("-id")[
        :RESULTS_RUNS_SHOWN
    ]
    return render(request, "results.html", context)


@page
def tokens(request):
    created = None
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        if not name:
            error = "Give the token a name."
        elif ApiToken.objects.active().filter(user=request.user).count() >= MAX_TOKENS_PER_USER:
            error = f"You already have {MAX_TOKENS_PER_USER} active tokens; revoke one first."
        else:
            _, created = ApiToken.issue(request.user, name)
    rows = ApiToken.objects.filter(user=request.user)
    response = render(request, "eval/tokens.html", {"tokens": rows, "created": created, "error": error})
    response["Cache-Control"] = "no-store"  # the new token is shown once
    return response


@page
@require_POST
def revoke_token(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoke()
    return redirect("tokens")


def favicon(request):
    """/favicon.ico, which browsers and the admin ask for on their own: the site's SVG icon."""
    response = redirect(static("eval/favicon.svg"))
    response["Cache-Control"] = "max-age=86400"
    return response


def permission_denied(request, exception=None):
    """handler403: the site's own page saying why, logged as one INFO line.

    Django would log a refused page at WARNING with the traceback of the
    PermissionDenied; a reviewer opening the dashboard is no incident. A
    response marked as logged is not logged again by Django."""
    message = str(exception or "") or "You do not have access to this page."
    response = render(request, "403.html", {"message": message}, status=403)
    user = getattr(request, "user", None)
    who = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    logger.info("Forbidden: %s for %s", request.path, who)
    response._has_been_logged = True  # read by django.utils.log.log_response
    return response


def bad_request(request, exception=None):
    """handler400: the site's page. A query string a page refused says why, logged
    as one INFO line (Django would log a WARNING); other 400s (a disallowed Host
    header, a malformed upload) keep Django's logging and show no detail."""
    refused = isinstance(exception, QueryRefused)
    response = render(request, "400.html", {"message": str(exception) if refused else ""}, status=400)
    if refused:
        logger.info("Bad request: %s: %s", request.path, exception)
        response._has_been_logged = True  # read by django.utils.log.log_response
    return response
