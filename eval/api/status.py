"""``/api/status`` (staff): the queue, the oldest wait, workers, recent failures, active alerts."""

from django.db.models import Count, Min
from django.utils import timezone
from ninja import Router

from eval import access, alerts
from eval.api.errors import forbidden
from eval.api.responses import answers
from eval.api.schemas import StatusOut
from eval.jobs import heartbeats, states
from eval.models import LLMJob

router = Router(tags=["status"])


@router.get("", response=answers({200: StatusOut}, 403), url_name="api-status")
def status(request):
    """Job counts per status, the oldest queued job's age, each worker's last
    heartbeat and whether it is online, the ten latest failures, the active
    alerts (as the daemon last evaluated them). Staff only."""
    if not access.is_staff(request.user):
        raise forbidden("staff only")
    return status_snapshot()


def _worker_json(worker, now):
    return {
        "worker_id": worker.worker_id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "last_seen": worker.last_seen.isoformat(),
        "jobs_done": worker.jobs_done,
        "jobs_failed": worker.jobs_failed,
        "in_flight": worker.in_flight,
        "online": heartbeats.is_online(worker, now),
    }


def _failure_json(row):
    return {
        "id": str(row["id"]),
        "task": row["task_id"],
        "provider": row["provider"],
        "model": row["model"],
        "error": {"code": row["error_code"], "message": row["error_message"]},
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }


def status_snapshot():
    now = timezone.now()
    counts = dict.fromkeys(states.ALL, 0)
    for row in LLMJob.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    oldest = LLMJob.objects.filter(status=states.QUEUED).aggregate(oldest=Min("created_at"))["oldest"]
    failures = (
        LLMJob.objects.filter(status=states.FAILED)
        .order_by("-finished_at")
        .values("id", "task_id", "provider", "model", "error_code", "error_message", "finished_at")[:10]
    )
    return {
        "counts": counts,
        "oldest_queued_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "workers": [_worker_json(worker, now) for worker in heartbeats.recent(now)],
        "recent_failures": [_failure_json(row) for row in failures],
        "alerts": [alert_json(alert) for alert in alerts.active_alerts()],
    }


def alert_json(alert):
    return {"rule": alert.rule, "message": alert.message, "since": alert.since.isoformat()}
