"""Comparison endpoints for bench/poll.py, served by the same gunicorn as the
product (settings bench.poll_settings) behind the same middleware, session
auth and API front door (eval.api.auth.endpoint):

- naive: the poll answer built the way that makes teams give up on polling:
  1 query for the jobs, then 1 per job for its task and 1 per job for its
  creator (lazy foreign keys), full outputs loaded and cut in Python, no
  ETag. The JSON is identical to the real poll's.
- constant: a fixed JSON body after the same login and the same one-query
  reviewer check the real poll makes: the ceiling for any poll endpoint.

Not part of the product (eval.urls never includes these).
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import include, path

from eval.access import is_reviewer, reviewer_sql
from eval.api.auth import endpoint
from eval.api.errors import not_found
from eval.api.serializers import job_json
from eval.db import prepared_cursor
from eval.jobs.states import TERMINAL as TERMINAL_STATUSES
from eval.models import LLMJob

CONSTANT_BODY = b'{"task": 0, "jobs": [], "all_terminal": true}'


def naive_poll(request, task_id):
    user = request.user
    if not is_reviewer(user):
        raise not_found("no such task")
    limit = settings.POLL_OUTPUT_CHARS
    jobs = []
    for job in LLMJob.objects.filter(task_id=task_id).order_by("created_at", "id"):  # 1 query
        row = {name: getattr(job, name) for name in ("id", "kind", "provider", "model", "status", "progress")}
        row.update(
            task_id=job.task.pk,  # 1 query per job
            creator=job.created_by.username if job.created_by else None,  # 1 query per job
            message=job.message,
            error_code=job.error_code,
            error_message=job.error_message,
            attempts=job.attempts,
            input_tokens=job.input_tokens,
            output_tokens=job.output_tokens,
            cost_usd=job.cost_usd,
            stop_reason=job.stop_reason,
            cancel_requested=job.cancel_requested,
            retry_of_id=job.retry_of_id,
            created_by_id=job.created_by_id,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
            out=job.output[:limit],
            out_len=len(job.output),
            hidden=job.hidden,
            params=job.params,
            prompt_hash=job.prompt_hash,
            task_prompt_hash=job.task.prompt_hash,
        )
        jobs.append(row)
    body = {
        "task": task_id,
        "jobs": [job_json(row, user) for row in jobs],
        "all_terminal": all(row["status"] in TERMINAL_STATUSES for row in jobs),
    }
    return JsonResponse(body)


def constant(request, task_id):
    rule = reviewer_sql(request.user)
    if rule is None:
        raise not_found("no such task")
    condition, params = rule
    if condition:
        with prepared_cursor() as cursor:
            cursor.execute("SELECT " + condition, params)
            if not cursor.fetchone()[0]:
                raise not_found("no such task")
    return HttpResponse(CONSTANT_BODY, content_type="application/json")


urlpatterns = [
    path("bench/naive/<int:task_id>/jobs", endpoint(GET=naive_poll)),
    path("bench/constant/<int:task_id>/jobs", endpoint(GET=constant)),
    path("", include("coreproject.urls")),
]
