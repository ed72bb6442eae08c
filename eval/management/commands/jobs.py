"""``manage.py jobs list|show|cancel|retry|requeue``: look at and act on LLM jobs.

Every change goes through eval/jobs/ (transitions.py, create.py), as from the web page.
Exit codes: 0 ok, 1 error (unknown job, a state that forbids the action),
2 usage (e.g. a malformed job id).
"""

import json
import uuid
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from eval.jobs import create, states, transitions
from eval.jobs.errors import JobError
from eval.models import JobStatus, LLMJob

MESSAGE_WIDTH = 48


def _when(value):
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _plain(value):
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _priority(value):
    try:
        return LLMJob.Priority(value).label.lower()
    except ValueError:
        return str(value)


def job_fields(job):
    """Every column of the job, JSON-ready (foreign keys as ids, the creator by name)."""
    data = {}
    for field in LLMJob._meta.concrete_fields:
        if field.name == "created_by":
            data["created_by"] = job.created_by.get_username() if job.created_by_id else None
        else:
            data[field.name] = _plain(getattr(job, field.attname))
    data["priority_name"] = _priority(job.priority)
    return data


class Command(BaseCommand):
    help = (
        "List, show, cancel, retry or requeue LLM jobs. `jobs list [--status S] [--task ID] [--limit N]`; "
        "`jobs show ID [--json]`; `jobs cancel ID` (a running job stops within seconds); `jobs retry ID` "
        "(a new job repeating a failed or cancelled one); `jobs requeue ID` (queued or running jobs only: "
        "put back in the queue now, e.g. when its worker is known dead; the attempt is not counted)."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        listing = actions.add_parser("list", help="recent jobs, newest first, as a compact table")
        listing.add_argument(
            "--status", action="append", choices=JobStatus.values, help="only jobs in this status (repeatable)"
        )
        listing.add_argument("--task", type=int, default=None, metavar="TASK_ID", help="only this task's jobs")
        listing.add_argument("--provider", default=None, help="only jobs for this provider")
        listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N jobs (default 50)")
        listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")

        show = actions.add_parser("show", help="every field of one job")
        show.add_argument("job_id", metavar="ID")
        show.add_argument("--json", action="store_true", help="as one JSON object")

        for name, text in (
            ("cancel", "cancel a queued job now, or ask its worker to stop a running one"),
            ("retry", "queue a new job repeating a failed or cancelled one"),
            ("requeue", "put a queued or running job back in the queue now (the attempt is not counted)"),
        ):
            actions.add_parser(name, help=text).add_argument("job_id", metavar="ID")

    def handle(self, *args, action, **options):
        try:
            return getattr(self, f"_{action}")(**options)
        except JobError as error:
            raise CommandError(error.message, returncode=1) from None
        except DatabaseError as error:
            raise CommandError(f"database error: {error}", returncode=1) from None

    # --- helpers ----------------------------------------------------------------------
    def _job_id(self, raw):
        try:
            return uuid.UUID(raw.strip())
        except ValueError:
            raise CommandError(f"{raw!r} is not a job id (a UUID, as shown by `jobs list`)", returncode=2) from None

    def _get(self, raw):
        job_id = self._job_id(raw)
        job = LLMJob.objects.select_related("task", "created_by").filter(id=job_id).first()
        if job is None:
            raise CommandError(f"no job {job_id}", returncode=1)
        return job

    def _say(self, job, what):
        self.stdout.write(f"{job.id} {job.status}: {what}")

    # --- actions ----------------------------------------------------------------------
    def _list(self, *, status, task, provider, limit, json, **options):
        if limit < 1:
            raise CommandError("--limit must be at least 1", returncode=2)
        jobs = LLMJob.objects.select_related("created_by").order_by("-created_at")
        if status:
            jobs = jobs.filter(status__in=status)
        if task is not None:
            jobs = jobs.filter(task_id=task)
        if provider:
            jobs = jobs.filter(provider=provider)
        jobs = list(jobs[:limit])
        if json:
            for job in jobs:
                self.stdout.write(_json_dumps(_summary(job)))
            return
        if not jobs:
            self.stdout.write("No jobs.")
            return
        header = ("ID", "STATUS", "PRIORITY", "TASK", "MODEL", "PROG", "TRY", "CREATED (UTC)", "MESSAGE")
        rows = [
            (
                str(job.id),
                job.status + ("*" if job.cancel_requested and not states.is_terminal(job.status) else ""),
                _priority(job.priority),
                str(job.task_id),
                f"{job.provider}/{job.model}",
                f"{job.progress}%",
                f"{job.attempts}/{job.max_attempts}",
                _when(job.created_at),
                _cut(job.message, MESSAGE_WIDTH),
            )
            for job in jobs
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if any(job.cancel_requested and not states.is_terminal(job.status) for job in jobs):
            self.stdout.write("* cancel requested")

    def _show(self, *, job_id, json, **options):
        job = self._get(job_id)
        data = job_fields(job)
        if json:
            self.stdout.write(_json_dumps(data, indent=2))
            return
        output = data.pop("output")
        width = max(len(name) for name in data)
        for name, value in data.items():
            shown = "-" if value is None or value == "" else value
            if isinstance(shown, dict | list):
                shown = _json_dumps(shown)
            self.stdout.write(f"{name.ljust(width)}  {shown}")
        self.stdout.write(f"{'output'.ljust(width)}  ({len(output)} characters)")
        if output:
            self.stdout.write(output)

    def _cancel(self, *, job_id, **options):
        job_id = self._job_id(job_id)
        try:
            job = transitions.request_cancel(job_id, by="cli")
        except LLMJob.DoesNotExist:
            raise CommandError(f"no job {job_id}", returncode=1) from None
        self._say(job, job.message)

    def _retry(self, *, job_id, **options):
        job = self._get(job_id)
        new_job = create.retry_job(job)
        self._say(new_job, f"retry of {job.id}")

    def _requeue(self, *, job_id, **options):
        job = self._get(job_id)
        if not states.can_requeue(job.status):
            raise CommandError(f"only queued or running jobs can be requeued (this one is {job.status})", returncode=1)
        job = transitions.requeue(job.id)
        self._say(job, f"requeued (attempt {job.attempts} of {job.max_attempts} used)")


def _summary(job):
    return {
        "id": str(job.id),
        "status": job.status,
        "priority": _priority(job.priority),
        "task": job.task_id,
        "provider": job.provider,
        "model": job.model,
        "progress": job.progress,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested,
        "message": job.message,
        "error_code": job.error_code or None,
        "created_by": job.created_by.get_username() if job.created_by_id else None,
        "created_at": _plain(job.created_at),
        "finished_at": _plain(job.finished_at),
    }


def _json_dumps(data, **kwargs):
    return json.dumps(data, default=str, ensure_ascii=False, **kwargs)


def _cut(text, width):
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"
