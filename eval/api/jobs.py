"""``/api/jobs``: jobs by id, one job (the rest of a cut output), cancel and
retry. State changes go through the job engine (eval/jobs)."""

from django.conf import settings
from django.http import HttpResponse
from ninja import Query, Router, Status

from eval import access
from eval.api import etag as etags
from eval.api.errors import not_found
from eval.api.lookups import job_answer, manageable_job
from eval.api.responses import answers
from eval.api.run_schemas import CostError
from eval.api.schemas import JobId, JobIds, JobList, JobOut, OutputFrom
from eval.api.serializers import job_json, job_rows
from eval.evaluation.reviews import seen
from eval.jobs import create, quota, transitions
from eval.models import LLMJob

router = Router(tags=["jobs"])


@router.get("", response=answers({200: JobList}, 400), url_name="api-jobs")
def list_jobs(request, query: Query[JobIds]):
    """Jobs in the order asked; ids the caller cannot see are left out.
    Outputs are cut as in the poll."""
    if not access.is_reviewer(request.user):
        return {"jobs": []}
    rows = LLMJob.objects.filter(pk__in=query.ids)
    found = {str(row["id"]): row for row in job_rows(rows, max_chars=settings.POLL_OUTPUT_CHARS)}
    seen.mark_jobs(request.user.pk, [row["id"] for row in found.values()])  # models shown: not blind for them
    return {"jobs": [job_json(found[job_id], request.user) for job_id in query.ids if job_id in found]}


@router.get("/{job_id}", response=answers({200: JobOut, 304: None}, 400, 404), url_name="api-job")
def get_job(request, response: HttpResponse, job_id: JobId, query: Query[OutputFrom]):
    """One job with its whole output, or from character `output_from` on.
    Has an `ETag`; `If-None-Match` -> 304 while the job is unchanged."""
    user = request.user
    if not access.is_reviewer(user):
        raise not_found("no such job")
    output_from = query.output_from or 0
    row = job_rows(LLMJob.objects.filter(pk=job_id), output_from=output_from).first()
    if row is None:
        raise not_found("no such job")
    seen.mark_jobs(user.pk, [row["id"]])
    tag = etags.job_etag(user, row, output_from)
    if etags.matches(request, tag):
        return etags.not_modified(tag)
    etags.tag(response, tag)
    return job_json(row, user, output_from=output_from)


@router.post("/{job_id}/cancel", response=answers({200: JobOut}, 403, 404, 409, write=True), url_name="api-job-cancel")
def cancel_job(request, response: HttpResponse, job_id: JobId):
    """Cancel: a queued job at once; a running one keeps running with
    `cancel_requested` until its worker stops it (within 2 s). 409 if it has ended.
    The job's creator or staff only."""
    job = manageable_job(request.user, job_id, "cancel")
    try:
        transitions.request_cancel(job.pk, by=request.user.get_username())
    except LLMJob.DoesNotExist:
        raise not_found("no such job") from None
    return job_answer(request, response, job.pk)


@router.post(
    "/{job_id}/retry",
    response=answers({201: JobOut, 409: CostError}, 403, 404, 429, write=True),
    url_name="api-job-retry",
)
def retry_job(request, response: HttpResponse, job_id: JobId):
    """A new job (`retry_of`) repeating a failed or cancelled one (409 otherwise).
    The job's creator or staff only. It reserves against the caller's daily
    budget like any new job (409 `budget_exceeded`)."""
    job = manageable_job(request.user, job_id, "retry")
    new_job = create.retry_job(
        LLMJob.objects.select_related("task").get(pk=job.pk),
        by_user=request.user,
        admit=lambda: quota.check_job_creation(request.user),
    )
    return Status(201, job_answer(request, response, new_job.pk))
