"""``/api/tasks``: the task list, a task's jobs (the poll, and creating a job)."""

from django.http import HttpResponse
from ninja import Header, Query, Router, Status

from eval import access
from eval.api import plain
from eval.api.estimate_schemas import JobEstimateOut
from eval.api.lookups import job_answer, visible_task
from eval.api.responses import answers
from eval.api.run_schemas import CostError
from eval.api.schemas import MAX_IDEMPOTENCY_KEY, NO_NUL, JobCreate, JobOut, PollOut, TaskFilters, TaskId, TaskPage
from eval.api.serializers import task_json
from eval.evaluation.reviews import review_status
from eval.evaluation.reviews.task_lists import PAGE_SIZE, search_tasks, task_page
from eval.evaluation.runs.input import clean_template
from eval.jobs import create, quota

router = Router(tags=["tasks"])


@router.get("", response=answers({200: TaskPage}, 400), url_name="api-tasks")
def list_tasks(request, filters: Query[TaskFilters]):
    """Tasks, 50 a page ordered by id (keyset: rows never jump between pages).
    Empty for callers who are not reviewers."""
    user = request.user
    if not access.is_reviewer(user):
        return {"tasks": [], "next": None, "count": 0}
    tasks = review_status.filter_tasks(
        search_tasks(status=filters.status or "", q=filters.q.strip()), user, filters.review or ""
    )
    rows, next_cursor, _ = task_page(tasks, user, after=filters.after, size=PAGE_SIZE)
    return {"tasks": [task_json(task) for task in rows], "next": next_cursor, "count": tasks.count()}


@router.get("/{task_id}/jobs", response=answers({200: PollOut, 304: None}, 404), url_name="api-task-jobs")
def poll_jobs(request, task_id: TaskId):
    """The task's jobs, for polling: send the last `ETag` as `If-None-Match`;
    304 (no body) while nothing changed. Outputs are cut to POLL_OUTPUT_CHARS
    (`output_truncated`); GET /api/jobs/{job_id}?output_from=N has the rest.

    Served by a plain Django view (eval/api/plain.py), the hot path; declared
    here for the schema, and answering the same if ever reached."""
    return plain.poll_answer(request, task_id)


@router.post("/{task_id}/jobs", response=answers({201: JobOut, 200: JobOut, 409: CostError}, 404, 429, write=True))
def create_job(
    request,
    response: HttpResponse,
    task_id: TaskId,
    payload: JobCreate,
    idempotency_key: str = Header(
        "",
        alias="Idempotency-Key",
        max_length=MAX_IDEMPOTENCY_KEY,
        pattern=NO_NUL,
        description="Makes a retried POST safe.",
    ),
):
    """Queue a job: 201 with `Location`. With an `Idempotency-Key` (per user, 24 h)
    a replay answers 200 with the same job; the same key with another body is 409.
    The job's estimate is reserved against your daily budget (409 `budget_exceeded`
    over it; 400 for a model with no price while a budget is set)."""
    task = visible_task(request.user, task_id)
    params = payload.params.model_dump(exclude_unset=True) if payload.params is not None else None
    template = clean_template(payload.template, params) if payload.template is not None else None
    job, created = create.create_job(
        task=task,
        provider=payload.provider,
        model=payload.model,
        params=params,
        created_by=request.user,
        idempotency_key=idempotency_key.strip(),
        admit=lambda: quota.check_job_creation(request.user),
        template=template,
    )
    return Status(201 if created else 200, job_answer(request, response, job.pk))


@router.post(
    "/{task_id}/jobs/estimate",
    response=answers({200: JobEstimateOut}, 404, write=True),
    url_name="api-task-job-estimate",
)
def estimate_job(request, task_id: TaskId, payload: JobCreate):
    """A dry run of creating this job (the same body, refused the same way):
    what it would cost at most. Nothing is created; no limit is counted."""
    task = visible_task(request.user, task_id)
    params = payload.params.model_dump(exclude_unset=True) if payload.params is not None else None
    template = clean_template(payload.template, params) if payload.template is not None else None
    found = create.dry_run(task=task, provider=payload.provider, model=payload.model, params=params, template=template)
    return {"estimate": found.as_json()}
