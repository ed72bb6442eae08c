"""JSON shapes of the API. Jobs are read as ``values()`` rows (no model
instances), with the output cut in SQL so long outputs never leave the
database in a poll."""

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Length, Substr

from eval import access
from eval.jobs import states
from eval.models import LLMJob

JOB_COLUMNS = (
    "id",
    "kind",
    "task_id",
    "provider",
    "model",
    "status",
    "progress",
    "message",
    "error_code",
    "error_message",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "stop_reason",
    "cancel_requested",
    "retry_of_id",
    "created_by_id",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "version",
    "hidden",
    "params",
    "prompt_hash",
    "template_id",
    "messages_sent",
)


def job_rows(queryset, *, max_chars=None, output_from=0, extra=()):
    """``queryset`` as dict rows with ``out`` (the output, cut) and ``out_len``.

    ``max_chars``: keep at most that many characters (the poll);
    ``output_from``: start at that character (the rest of a cut output);
    ``extra``: more columns (or lookups) to read."""
    queryset = queryset.annotate(
        creator=F("created_by__username"),
        out_len=Length("output"),
        task_prompt_hash=F("task__prompt_hash"),
        task_messages=F("task__messages"),
        template_label=F("template__name"),
        template_version=F("template__version"),
    )
    if max_chars is not None:
        queryset = queryset.annotate(out=Substr("output", output_from + 1, max_chars))
    elif output_from:
        queryset = queryset.annotate(out=Substr("output", output_from + 1))
    else:
        queryset = queryset.annotate(out=F("output"))
    return queryset.values(
        *JOB_COLUMNS,
        "creator",
        "out_len",
        "out",
        "task_prompt_hash",
        "task_messages",
        "template_label",
        "template_version",
        *extra,
    )


def poll_rows(task_id):
    return job_rows(
        LLMJob.objects.filter(task_id=task_id).order_by("created_at", "id"), max_chars=settings.POLL_OUTPUT_CHARS
    )


def _iso(value):
    return value.isoformat() if value is not None else None


def job_json(row, user, *, output_from=0):
    status = row["status"]
    manager = access.may_manage_job(user, row["created_by_id"])
    output = row["out"] or ""
    total = row["out_len"] or 0
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "task": row["task_id"],
        "provider": row["provider"],
        "model": row["model"],
        "status": status,
        "progress": row["progress"],
        "message": row["message"],
        "output": output,
        "output_truncated": output_from + len(output) < total,
        "error": {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None,
        "attempts": row["attempts"],
        "usage": {"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]},
        "cost_usd": float(row["cost_usd"]) if row["cost_usd"] is not None else None,
        "stop_reason": row["stop_reason"] or None,
        "cancel_requested": row["cancel_requested"],
        "terminal": states.is_terminal(status),
        "can_cancel": manager and states.can_cancel(status, row["cancel_requested"]),
        "can_retry": manager and states.can_retry(status),
        "retry_of": str(row["retry_of_id"]) if row["retry_of_id"] else None,
        "hidden": row["hidden"],
        "can_hide": manager,
        "params": row["params"] or {},
        "from_current_prompt": row["prompt_hash"] == row["task_prompt_hash"],
        # What a generate job was asked: the task's conversation (a judge job's prompt is its own).
        "messages": row.get("task_messages") if row["kind"] == LLMJob.Kind.GENERATE else None,
        "template": row["template_id"],
        "template_name": f"{row['template_label']} v{row['template_version']}" if row["template_id"] else None,
        "messages_sent": row["messages_sent"],
        "created_by": row["creator"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def is_terminal(row):
    return states.is_terminal(row["status"])


def task_json(task):
    """A task in the list; ``task`` carries the annotations of TaskListQuery."""
    return {
        "id": task.id,
        "external_id": task.external_id,
        "title": task.title,
        "status": task.status,
        "jobs": {status: getattr(task, f"jobs_{status}") for status in states.ALL},
        "reviewed_by_me": task.reviewed_by_me,
        "messages": task.messages,
    }


def review_json(task_id, review):
    if review is None:
        return {
            "task": task_id,
            "rating": None,
            "notes": None,
            "preferred_job": None,
            "created_at": None,
            "updated_at": None,
        }
    return {
        "task": task_id,
        "rating": review.rating,
        "notes": review.notes,
        "preferred_job": str(review.preferred_job_id) if review.preferred_job_id else None,
        "created_at": _iso(review.created_at),
        "updated_at": _iso(review.updated_at),
    }
