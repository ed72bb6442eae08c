"""What the endpoints share: the task or job a caller may see (404 for anyone
who may not: DESIGN "Who sees what"), and a job as the answer."""

from eval import access
from eval.api.errors import forbidden, not_found
from eval.api.serializers import job_json, job_rows
from eval.evaluation.reviews import seen
from eval.models import LLMJob, Task


def visible_task(user, task_id):
    if not access.is_reviewer(user):
        raise not_found("no such task")
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise not_found("no such task")
    return task


def manageable_job(user, job_id, verb):
    """The job ``user`` may cancel or retry: 404 when unseen, 403 unless its creator or staff."""
    if not access.is_reviewer(user):
        raise not_found("no such job")
    job = LLMJob.objects.filter(pk=job_id).only("id", "status", "created_by_id", "task_id").first()
    if job is None:
        raise not_found("no such job")
    if not access.may_manage_job(user, job.created_by_id):
        raise forbidden(f"only the job's creator or staff may {verb} it")
    return job


def job_answer(request, response, job_id):
    """The job as JSON, with ``Location: /api/jobs/<id>`` on ``response``."""
    row = job_rows(LLMJob.objects.filter(pk=job_id)).get()
    seen.mark_jobs(request.user.pk, [row["id"]])  # the answer shows the output with its model
    response["Location"] = f"/api/jobs/{job_id}"
    return job_json(row, request.user)
