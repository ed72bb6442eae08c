"""A run's work: its jobs task by task (``GET /api/runs/<id>/jobs``), the
comparison of two runs (``GET /api/runs/compare``) and baselines. Registered
before the runs router, so ``/api/runs/compare`` is never read as a run id.

Showing outputs with their models records that the caller has seen those
tasks' jobs (eval/evaluation/reviews/seen.py): a later pairwise verdict on
them is not blind."""

from django.conf import settings
from django.http import HttpResponse
from ninja import Query, Router

from eval import access
from eval.api import etag as etags
from eval.api.errors import forbidden, not_found
from eval.api.responses import answers
from eval.api.run_schemas import RunId, RunOut
from eval.api.run_work_schemas import CompareOut, CompareQuery, RunJobFilters, RunJobPage
from eval.api.serializers import job_json, job_rows
from eval.evaluation.compare import gate
from eval.evaluation.compare import service as compare
from eval.evaluation.reviews import seen
from eval.evaluation.runs import baselines, job_list
from eval.evaluation.runs import report as run_report
from eval.evaluation.runs import services as runs
from eval.models import LLMJob, Run, Task

router = Router(tags=["runs"])


@router.get("/compare", response=answers({200: CompareOut}, 403, 404), url_name="api-runs-compare")
def compare_runs(request, query: Query[CompareQuery]):
    """Run B against run A, task by task: per task both ran, the latest ended job of
    each (a failed job fails every check); a task whose prompt or reference changed
    between them is left out and counted. The summary tests each check both runs ran
    (same settings) and each judge run that compared them with the one-sided exact
    binomial p that B regressed; `gate` is what `manage.py runs compare` decides on
    (each test's p after Holm's correction across them all, at alpha 0.05). Rows are
    50 a page by task id (`next` as `after`); `only` and `check` narrow the rows,
    never the summary. Reviewers only (403 for
    others who may see runs); each reviewer's own verdict only for staff."""
    user = request.user
    if not access.may_see_runs(user):
        raise not_found("no such run")
    if not access.is_reviewer(user):
        raise forbidden("comparisons show outputs: they are for reviewers")
    found = Run.objects.in_bulk([query.a, query.b])
    if query.a not in found or query.b not in found:
        raise not_found("no such run")
    comparison = compare.build(found[query.a], found[query.b])
    rows, following, count = compare.rows(
        comparison, only=query.only or "", check=query.check or "", after=query.after, staff=access.is_staff(user)
    )
    _with_jobs(rows, user)
    decision = gate.decide(comparison)
    summary = decision.pop("summary")
    return {
        "a": _run_brief(found[query.a]),
        "b": _run_brief(found[query.b]),
        "summary": summary,
        "gate": decision,
        "rows": rows,
        "next": following,
        "count": count,
    }


def _run_brief(run):
    return {f: getattr(run, f) for f in ("name", "kind", "provider", "model", "status")} | {"id": run.pk}


def _with_jobs(rows, user):
    """Each row's job ids -> the jobs (outputs cut as in the poll), and its task's title."""
    ids = [row[side] for row in rows for side in ("a", "b")]
    jobs = {str(r["id"]): r for r in job_rows(LLMJob.objects.filter(pk__in=ids), max_chars=settings.POLL_OUTPUT_CHARS)}
    titles = dict(Task.objects.filter(pk__in=[row["task"] for row in rows]).values_list("pk", "title"))
    for row in rows:
        row["a"], row["b"] = job_json(jobs[row["a"]], user), job_json(jobs[row["b"]], user)
        row["title"] = titles.get(row["task"], "")
    seen.mark_jobs(user.pk, ids)  # outputs shown with their models: not blind for them


RUN_JOB_EXTRA = ("check_results", "task__title", "task__external_id")


def _run_jobs_tag(user, run_id, state, query):
    version, newest = state
    shown = f"{query.show or ''}-{query.after or ''}-c{settings.POLL_OUTPUT_CHARS}"
    return f'"rj{run_id}-{version}-{newest}-{etags.who(user)}-{shown}"'


def _run_job_json(row, user):
    data = job_json(row, user)
    data["task_ref"] = {"id": row["task_id"], "title": row["task__title"], "external_id": row["task__external_id"]}
    data["checks"] = row["check_results"] or {}
    return data


@router.get("/{run_id}/jobs", response=answers({200: RunJobPage, 304: None}, 404), url_name="api-run-jobs")
def run_jobs(request, response: HttpResponse, run_id: RunId, query: Query[RunJobFilters]):
    """The run's jobs with their outputs (cut as in the poll), 50 a page ordered
    by task then job (keyset: pass `next` as `after`). Has an `ETag` (the run's
    version and its jobs' newest change); `If-None-Match` -> 304 while nothing changed.
    Only reviewers see jobs: anyone else gets an empty list."""
    user = request.user
    state = run_report.poll_state(run_id) if access.may_see_runs(user) else None
    if state is None:
        raise not_found("no such run")
    tag = _run_jobs_tag(user, run_id, state, query)
    if etags.matches(request, tag):
        return etags.not_modified(tag)
    etags.tag(response, tag)
    run = Run.objects.get(pk=run_id)
    if not access.is_reviewer(user):
        return {"run": run_id, "jobs": [], "next": None, "count": 0}
    jobs = job_list.selection(run, user, query.show or "")
    after = job_list.parse_cursor(query.after) if query.after else None
    rows = list(job_rows(job_list.page(jobs, after), max_chars=settings.POLL_OUTPUT_CHARS, extra=RUN_JOB_EXTRA))
    more = len(rows) > job_list.PAGE_SIZE
    rows = rows[: job_list.PAGE_SIZE]
    seen.mark_jobs(user.pk, [row["id"] for row in rows])  # outputs shown with their models: not blind for them
    return {
        "run": run_id,
        "jobs": [_run_job_json(row, user) for row in rows],
        "next": job_list.cursor_of(rows[-1]) if more else None,
        "count": jobs.count(),
    }


@router.post(
    "/{run_id}/baseline", response=answers({200: RunOut}, 403, 404, 409, write=True), url_name="api-run-baseline"
)
def mark_baseline(request, run_id: RunId):
    """Make this run the baseline of its dataset (its selection's source, or the one
    dataset all its tasks come from): `manage.py runs compare --baseline` and each
    scheduled firing compare with it. The dataset's previous baseline stops being one.
    Staff or `eval.launch_run`; 409 unless the run is a done generate run over one dataset."""
    user = request.user
    run = Run.objects.select_related("created_by", "rubric").filter(pk=run_id).first()
    if run is None or not access.may_see_runs(user):
        raise not_found("no such run")
    if not access.may_launch(user):
        raise forbidden("marking a baseline needs staff or the eval.launch_run permission")
    return runs.run_json(baselines.mark(runs.refresh_status(run)))
