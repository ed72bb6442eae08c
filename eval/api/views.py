"""JSON endpoints (DESIGN "HTTP API"). Thin: parse, check access, call the
job engine, shape the answer."""

import re

from django.conf import settings
from django.db.models import Count, Min
from django.http import JsonResponse
from django.utils import timezone

from eval import metrics
from eval.api import etag as etags
from eval.api.access import is_reviewer, is_staff, may_manage_job, poll_state
from eval.api.auth import endpoint
from eval.api.errors import ApiError, invalid, not_found
from eval.api.queries import PAGE_SIZE, search_tasks, task_page
from eval.api.serializers import (
    is_terminal,
    job_json,
    job_rows,
    poll_rows,
    review_json,
    task_json,
)
from eval.api.user_quota import check_job_creation
from eval.jobs import create, heartbeats, states, transitions
from eval.models import LLMJob, Review, Task
from eval.providers import available_providers

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TASK_ID_RE = re.compile(r"^[1-9][0-9]{0,17}$")
MAX_IDS = 100
MAX_NOTES_CHARS = 100_000
MAX_IDEMPOTENCY_KEY = 200


# --- helpers ------------------------------------------------------------------------


def _task_id(raw):
    if not TASK_ID_RE.match(raw):
        raise not_found("no such task")
    return int(raw)


def _visible_task(user, raw):
    task_id = _task_id(raw)
    if not is_reviewer(user):
        raise not_found("no such task")
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise not_found("no such task")
    return task


def _visible_job(user, raw):
    if not UUID_RE.match(raw) or not is_reviewer(user):
        raise not_found("no such job")
    job = LLMJob.objects.filter(pk=raw).only("id", "status", "created_by_id", "task_id").first()
    if job is None:
        raise not_found("no such job")
    return job


def _job_answer(user, job_id, status=200):
    row = job_rows(LLMJob.objects.filter(pk=job_id)).get()
    response = JsonResponse(job_json(row, user), status=status)
    response["Location"] = f"/api/jobs/{job_id}"
    return response


def _int_param(request, name, *, minimum=0):
    raw = request.GET.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit() or int(raw) < minimum:
        raise invalid(f"{name} must be an integer of at least {minimum}", name)
    return int(raw)


def _reject_unknown(data, allowed):
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)}", unknown[0])


# --- tasks ----------------------------------------------------------------------------


def list_tasks(request):
    status = request.GET.get("status", "")
    if status and status not in Task.Status.values:
        raise invalid(f"status must be one of {', '.join(Task.Status.values)}", "status")
    after = _int_param(request, "after")
    q = request.GET.get("q", "").strip()
    user = request.user
    if not is_reviewer(user):
        return JsonResponse({"tasks": [], "next": None, "count": 0})
    tasks = search_tasks(status=status, q=q)
    rows, next_cursor, _ = task_page(tasks, user, after=after, size=PAGE_SIZE)
    return JsonResponse({"tasks": [task_json(task) for task in rows], "next": next_cursor, "count": tasks.count()})


def poll_jobs(request, task_id):
    """The poll: 304 from one indexed SQL statement when nothing changed;
    otherwise one more query for all the task's jobs."""
    task_id = _task_id(task_id)
    user = request.user
    state = poll_state(user, task_id)
    if state is None:
        raise not_found("no such task")
    tag = etags.poll_etag(user, task_id, state)
    if etags.matches(request, tag):
        metrics.observe_poll(304)
        return etags.not_modified(tag)
    metrics.observe_poll(200)
    rows = list(poll_rows(task_id))
    body = {
        "task": task_id,
        "jobs": [job_json(row, user) for row in rows],
        "all_terminal": all(is_terminal(row) for row in rows),
    }
    return etags.tag(JsonResponse(body), etags.poll_etag(user, task_id, etags.poll_state_of_rows(rows)))


def create_job(request, task_id):
    task = _visible_task(request.user, task_id)
    data = request.json
    _reject_unknown(data, ("provider", "model", "params"))
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise invalid(f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters", "Idempotency-Key")
    job, created = create.create_job(
        task=task,
        provider=data.get("provider"),
        model=data.get("model"),
        params=data.get("params"),
        created_by=request.user,
        idempotency_key=key,
        admit=lambda: check_job_creation(request.user),
    )
    return _job_answer(request.user, job.pk, status=201 if created else 200)


# --- jobs -----------------------------------------------------------------------------


def get_job(request, job_id):
    user = request.user
    if not UUID_RE.match(job_id) or not is_reviewer(user):
        raise not_found("no such job")
    output_from = _int_param(request, "output_from") or 0
    row = job_rows(LLMJob.objects.filter(pk=job_id), output_from=output_from).first()
    if row is None:
        raise not_found("no such job")
    tag = etags.job_etag(user, row, output_from)
    if etags.matches(request, tag):
        return etags.not_modified(tag)
    return etags.tag(JsonResponse(job_json(row, user, output_from=output_from)), tag)


def list_jobs(request):
    raw = request.GET.get("ids", "")
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not ids:
        raise invalid("ids is required: comma-separated job ids", "ids")
    if len(ids) > MAX_IDS:
        raise invalid(f"at most {MAX_IDS} ids", "ids")
    bad = next((job_id for job_id in ids if not UUID_RE.match(job_id)), None)
    if bad is not None:
        raise invalid(f"malformed job id {bad[:50]!r}", "ids")
    user = request.user
    if not is_reviewer(user):
        return JsonResponse({"jobs": []})
    ids = list(dict.fromkeys(ids))
    rows = {
        str(row["id"]): row for row in job_rows(LLMJob.objects.filter(pk__in=ids), max_chars=settings.POLL_OUTPUT_CHARS)
    }
    return JsonResponse({"jobs": [job_json(rows[job_id], user) for job_id in ids if job_id in rows]})


def cancel_job(request, job_id):
    job = _visible_job(request.user, job_id)
    if not may_manage_job(request.user, job.created_by_id):
        raise ApiError("forbidden", "only the job's creator or staff may cancel it")
    try:
        transitions.request_cancel(job.pk, by=request.user.get_username())
    except LLMJob.DoesNotExist:
        raise not_found("no such job") from None
    return _job_answer(request.user, job.pk)


def retry_job(request, job_id):
    job = _visible_job(request.user, job_id)
    if not may_manage_job(request.user, job.created_by_id):
        raise ApiError("forbidden", "only the job's creator or staff may retry it")
    new_job = create.retry_job(
        LLMJob.objects.select_related("task").get(pk=job.pk),
        by_user=request.user,
        admit=lambda: check_job_creation(request.user),
    )
    return _job_answer(request.user, new_job.pk, status=201)


# --- reviews --------------------------------------------------------------------------


def get_review(request, task_id):
    task = _visible_task(request.user, task_id)
    review = Review.objects.filter(task=task, reviewer=request.user).first()
    return JsonResponse(review_json(task.pk, review))


def put_review(request, task_id):
    task = _visible_task(request.user, task_id)
    data = request.json
    _reject_unknown(data, ("rating", "notes", "preferred_job"))
    rating = data.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
        raise invalid("rating must be an integer from 1 to 5, or null", "rating")
    notes = data.get("notes")
    if notes is None:
        notes = ""
    if not isinstance(notes, str):
        raise invalid("notes must be a string", "notes")
    if len(notes) > MAX_NOTES_CHARS:
        raise invalid(f"notes are longer than {MAX_NOTES_CHARS} characters", "notes")
    preferred = data.get("preferred_job")
    if preferred is not None:
        if not isinstance(preferred, str) or not UUID_RE.match(preferred):
            raise invalid("preferred_job must be a job id of this task, or null", "preferred_job")
        if not LLMJob.objects.filter(pk=preferred, task=task).exists():
            raise invalid("preferred_job is not a job of this task", "preferred_job")
    review, _ = Review.objects.update_or_create(
        task=task, reviewer=request.user, defaults={"rating": rating, "notes": notes, "preferred_job_id": preferred}
    )
    return JsonResponse(review_json(task.pk, review))


# --- reference and operations ------------------------------------------------------


def list_models(request):
    providers = [
        {
            "name": provider.name,
            "label": provider.label,
            "demo": bool(provider.demo),
            "models": [{"name": m.name, "max_tokens": m.max_tokens} for m in provider.models()],
        }
        for provider in available_providers()
    ]
    return JsonResponse({"providers": providers})


def status(request):
    if not is_staff(request.user):
        raise ApiError("forbidden", "staff only")
    return JsonResponse(status_snapshot())


def status_snapshot():
    now = timezone.now()
    counts = dict.fromkeys(states.ALL, 0)
    for row in LLMJob.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    oldest = LLMJob.objects.filter(status=states.QUEUED).aggregate(oldest=Min("created_at"))["oldest"]
    workers = heartbeats.recent(now)
    failures = (
        LLMJob.objects.filter(status=states.FAILED)
        .order_by("-finished_at")
        .values("id", "task_id", "provider", "model", "error_code", "error_message", "finished_at")[:10]
    )
    return {
        "counts": counts,
        "oldest_queued_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "workers": [
            {
                "worker_id": w.worker_id,
                "hostname": w.hostname,
                "pid": w.pid,
                "last_seen": w.last_seen.isoformat(),
                "jobs_done": w.jobs_done,
                "jobs_failed": w.jobs_failed,
                "in_flight": w.in_flight,
                "online": heartbeats.is_online(w, now),
            }
            for w in workers
        ],
        "recent_failures": [
            {
                "id": str(f["id"]),
                "task": f["task_id"],
                "provider": f["provider"],
                "model": f["model"],
                "error": {"code": f["error_code"], "message": f["error_message"]},
                "finished_at": f["finished_at"].isoformat() if f["finished_at"] else None,
            }
            for f in failures
        ],
    }


def unknown(request, rest=""):
    raise not_found("no such API endpoint")


ALL_METHODS = {method: unknown for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}

tasks_endpoint = endpoint(GET=list_tasks)
task_jobs_endpoint = endpoint(GET=poll_jobs, POST=create_job)
review_endpoint = endpoint(GET=get_review, PUT=put_review)
jobs_endpoint = endpoint(GET=list_jobs)
job_endpoint = endpoint(GET=get_job)
cancel_endpoint = endpoint(POST=cancel_job)
retry_endpoint = endpoint(POST=retry_job)
models_endpoint = endpoint(GET=list_models)
status_endpoint = endpoint(GET=status)
unknown_endpoint = endpoint(**ALL_METHODS)
