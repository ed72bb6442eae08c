"""``/api/tasks/<id>/judgements``, ``/api/judgements`` (staff: the judgements
behind a results figure), ``/api/judgements/<id>``, drafts and hiding jobs:
thin callers of eval/evaluation and eval/jobs."""

from django.http import HttpResponse
from ninja import Query, Router, Status

from eval import access
from eval.api.errors import forbidden, not_found
from eval.api.evaluation_schemas import AllJudgements, DraftIn, DraftOut, JudgementIn, JudgementList, JudgementOut
from eval.api.judgement_list_schemas import JudgementFilters, JudgementPage
from eval.api.lookups import job_answer, visible_task
from eval.api.responses import answers
from eval.api.schemas import JobId, JobOut, TaskId
from eval.evaluation.reviews import drafts, judgement_filters, judgement_list, judgements
from eval.jobs import visibility
from eval.models import Judgement, LLMJob

tasks_router = Router(tags=["judgements"])
judgements_router = Router(tags=["judgements"])
jobs_router = Router(tags=["jobs"])


def _json(judgement, task):
    return judgements.judgement_json(judgement, task.prompt_hash)


@tasks_router.get("/{task_id}/judgements", response=answers({200: JudgementList}, 403, 404))
def list_judgements(request, task_id: TaskId, query: Query[AllJudgements]):
    """Your current judgements of the task and the LLM judges'; staff with `all=1`: everyone's."""
    task = visible_task(request.user, task_id)
    if query.all and not access.is_staff(request.user):
        raise forbidden("all=1 is for staff")
    rows = judgements.for_task(task, request.user, everyone=query.all)
    return {"judgements": [_json(judgement, task) for judgement in rows]}


@tasks_router.post("/{task_id}/judgements", response=answers({201: JudgementOut}, 404, 409, write=True))
def create_judgement(request, task_id: TaskId, payload: JudgementIn):
    """Score one output (`kind: score`, answers checked against the task's rubric) or
    compare two (`kind: pairwise` with a verdict). Supersedes your earlier judgement
    of the same jobs. Jobs must be succeeded, visible jobs of this task."""
    task = visible_task(request.user, task_id)
    jobs = judgements.judgeable_jobs(task, payload.jobs)
    judgement = judgements.record(
        reviewer=request.user,
        task=task,
        kind=payload.kind,
        jobs=jobs,
        verdict=payload.verdict or "",
        answers=payload.answers,
        notes=payload.notes or "",
    )
    return Status(201, _json(judgement, task))


@judgements_router.get("", response=answers({200: JudgementPage}, 400, 403), url_name="api-judgements")
def list_all_judgements(request, query: Query[JudgementFilters]):
    """Staff only: current judgements of visible outputs (those the results count),
    newest first, 50 a page (keyset on id: pass `next` as `after`). `run`, `runs`,
    `model` and `source` narrow them as GET /api/exports does; `judged_by`, `judge`,
    `blind` and `kind` pick a results segment; stale ones only with `include_stale`.
    An unknown run is a 400 `invalid`."""
    if not access.is_staff(request.user):
        raise forbidden("the judgements list is for staff")
    scope = judgement_filters.build(
        source=query.source,
        run=query.run,
        runs=query.runs,
        model=query.model,
        judged_by=query.judged_by,
        judge=query.judge,
        blind=query.blind,
        kind=query.kind,
    )
    rows, cursor = judgement_list.page(scope, include_stale=query.include_stale, after=query.after)
    return {"judgements": rows, "next": cursor}


@judgements_router.delete("/{judgement_id}", response=answers({200: JudgementOut}, 403, 404, 409, write=True))
def withdraw_judgement(request, judgement_id: int):
    """Undo: withdraw your judgement within JUDGEMENT_UNDO_SECONDS (409 after).
    It is kept, never counted; the one it superseded counts again."""
    if not access.is_reviewer(request.user):
        raise not_found("no such judgement")
    judgement = judgements.withdraw(request.user, judgement_id)
    judgement = Judgement.objects.select_related("task", "reviewer", "rubric").get(pk=judgement.pk)
    return _json(judgement, judgement.task)


# --- drafts --------------------------------------------------------------------------


@tasks_router.get("/{task_id}/draft", response=answers({200: DraftOut}, 404))
def get_draft(request, task_id: TaskId):
    """Your unsaved review form for the task (nulls when none)."""
    task = visible_task(request.user, task_id)
    return drafts.draft_json(task.pk, drafts.get(request.user, task))


@tasks_router.put("/{task_id}/draft", response=answers({200: DraftOut}, 404, write=True))
def put_draft(request, task_id: TaskId, payload: DraftIn):
    """Keep your unsaved review form (any JSON object up to 512 KB), so another device sees it."""
    task = visible_task(request.user, task_id)
    draft = drafts.put(request.user, task, payload.model_dump())
    return drafts.draft_json(task.pk, draft)


@tasks_router.delete("/{task_id}/draft", response=answers({204: None}, 404, write=True))
def delete_draft(request, task_id: TaskId):
    """Discard your draft (done when the review is saved)."""
    task = visible_task(request.user, task_id)
    drafts.discard(request.user, task)
    return Status(204, None)


# --- hiding a job ------------------------------------------------------------------------


def _set_hidden(request, response, job_id, hidden):
    if not access.is_reviewer(request.user):
        raise not_found("no such job")
    job = LLMJob.objects.filter(pk=job_id).only("id", "created_by_id").first()
    if job is None:
        raise not_found("no such job")
    if not access.may_manage_job(request.user, job.created_by_id):
        raise forbidden("only the job's creator or staff may hide or unhide it")
    visibility.set_hidden(job.pk, hidden)
    return job_answer(request, response, job.pk)


@jobs_router.post("/{job_id}/hide", response=answers({200: JobOut}, 403, 404, write=True))
def hide_job(request, response: HttpResponse, job_id: JobId):
    """Hide a job from pages, pairs and results (kept; `unhide` brings it back). Creator or staff."""
    return _set_hidden(request, response, job_id, True)


@jobs_router.post("/{job_id}/unhide", response=answers({200: JobOut}, 403, 404, write=True))
def unhide_job(request, response: HttpResponse, job_id: JobId):
    """Show a hidden job again. Creator or staff."""
    return _set_hidden(request, response, job_id, False)
