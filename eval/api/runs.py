"""``/api/runs`` and ``/api/budget``: evaluation runs and the caller's daily
budget. Thin callers of eval/evaluation/runs.py.

Seeing runs: reviewers and launchers. Creating, launching and cancelling:
staff or ``eval.launch_run`` (403 otherwise); cancelling also needs to be the
run's creator or staff."""

from django.http import HttpResponse
from ninja import Query, Router, Status

from eval import access
from eval.api import etag as etags
from eval.api.errors import forbidden, not_found
from eval.api.estimate_schemas import RunEstimateOut
from eval.api.responses import answers
from eval.api.run_schemas import BudgetOut, CostError, LaunchOptions, RunCreate, RunFilters, RunId, RunOut, RunPage
from eval.evaluation.runs import costs as run_costs
from eval.evaluation.runs import report as run_report
from eval.evaluation.runs import services as runs
from eval.jobs import quota
from eval.models import Run

router = Router(tags=["runs"])
budget_router = Router(tags=["runs"])
PAGE_SIZE = 50


def _launcher(user):
    if not access.may_launch(user):
        raise forbidden("creating, launching and cancelling runs needs staff or the eval.launch_run permission")
    return user


def _visible(user, run_id):
    run = (
        Run.objects.select_related("created_by", "rubric").filter(pk=run_id).first()
        if access.may_see_runs(user)
        else None
    )
    if run is None:
        raise not_found("no such run")
    return run


def _answer(response, run):
    response["Location"] = f"/api/runs/{run.pk}"
    return runs.run_json(run)


@router.post(
    "", response=answers({201: RunOut, 200: RunEstimateOut, 409: CostError}, 403, write=True), url_name="api-runs"
)
def create_run(request, response: HttpResponse, payload: RunCreate):
    """Create a run. Without `schedule` it is launched at once: its jobs are queued
    at bulk priority. The estimate counts each prompt's characters over chars_per_token
    as its input tokens, plus max_tokens at the output price; above BULK_CONFIRM_COST_USD
    it needs `confirm_cost_usd` >= the estimate (409 `confirm_cost`), and it must fit
    in your remaining daily budget (409 `budget_exceeded`); both carry
    `error.estimated_cost_usd`. With `"dry_run": true` nothing is created: 200 with
    the estimate of launching it now (what the runs page shows)."""
    user = _launcher(request.user)
    data = payload.model_dump(exclude_none=True)
    if payload.params is not None:
        data["params"] = payload.params.model_dump(exclude_unset=True)
    if data.pop("dry_run", False):
        found, tasks, skipped = run_costs.dry_run(data)
        return Status(200, _estimate_answer(found, tasks, skipped))
    run = runs.create_run(user=user, data=data)
    return Status(201, _answer(response, run))


def _estimate_answer(found, tasks, skipped):
    return {
        "dry_run": True,
        "estimate": found.as_json(),
        "estimated_cost_usd": float(found.usd),
        "tasks": tasks,
        "skipped": len(skipped),
    }


@router.get("", response=answers({200: RunPage}, 400), url_name="api-runs-list")
def list_runs(request, query: Query[RunFilters]):
    """Runs, newest first, 50 a page (keyset on id: pass `next` as `after`)."""
    if not access.may_see_runs(request.user):
        return {"runs": [], "next": None}
    rows = Run.objects.select_related("created_by", "rubric").order_by("-id")
    if query.after:
        rows = rows.filter(id__lt=query.after)
    page = list(rows[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return {"runs": [runs.run_json(run) for run in page], "next": page[-1].pk if more else None}


def _tag(user, run_id, state):
    version, newest = state
    return f'"r{run_id}-{version}-{newest}-{etags.who(user)}"'


@router.get("/{run_id}", response=answers({200: RunOut, 304: None}, 404), url_name="api-run")
def get_run(request, response: HttpResponse, run_id: RunId):
    """One run with its counts, progress and cost. Has an `ETag` (the run's version and
    its jobs' newest change); `If-None-Match` -> 304 while nothing changed."""
    user = request.user
    state = run_report.poll_state(run_id) if access.may_see_runs(user) else None
    if state is None:
        raise not_found("no such run")
    tag = _tag(user, run_id, state)
    if etags.matches(request, tag):
        return etags.not_modified(tag)
    run = _visible(user, run_id)
    # The tag is the state read BEFORE the answer: a job that ends while the answer is
    # read moves the state on, so the next poll gets it (a tag read afterwards could
    # already hold that change while the answer says "running": 304 for good). The
    # answer's status is computed on read (a GET stores nothing): when the daemon's
    # pass stores "done", the run's version moves and so does the tag.
    etags.tag(response, tag)
    return runs.run_json(run)


@router.post("/{run_id}/cancel", response=answers({200: RunOut}, 403, 404, 409, write=True), url_name="api-run-cancel")
def cancel_run(request, response: HttpResponse, run_id: RunId):
    """Cancel a run: its queued jobs at once, running ones within seconds; a scheduled
    run stops firing. Its creator or staff (with the launch permission); 409 if it ended."""
    run = _visible(request.user, run_id)
    user = _launcher(request.user)
    if not access.may_cancel_run(user, run):
        raise forbidden("only the run's creator or staff may cancel it")
    return _answer(response, runs.cancel(run, by=user))


@router.post(
    "/{run_id}/launch",
    response=answers({201: RunOut, 409: CostError}, 403, 404, write=True),
    url_name="api-run-launch",
)
def launch_run(request, response: HttpResponse, run_id: RunId, query: Query[LaunchOptions]):
    """Run a scheduled run now: a new run (its `parent` the scheduled one) launched at
    once, with the same cost checks as creating one. 409 unless the run is scheduled."""
    run = _visible(request.user, run_id)
    user = _launcher(request.user)
    child = runs.launch_now(run, by=user, confirm_cost_usd=query.confirm_cost_usd)
    return Status(201, _answer(response, child))


@budget_router.get("", response=answers({200: BudgetOut}), url_name="api-budget")
def get_budget(request):
    """Your spend today: what your launches committed (estimates of what has not
    ended, the real cost of what has), what your jobs cost, the daily budget
    (USER_DAILY_BUDGET_USD) and what is left."""
    return quota.summary(request.user)
