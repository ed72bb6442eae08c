"""What the rules read, in a few small queries (each on an index), once a pass."""

from datetime import timedelta

from django.db.models import Count, Max, Min, Q

from eval.alerts.rules import PROVIDER_AUTH, Refusal, Regression, Snapshot
from eval.jobs import heartbeats, states
from eval.models import Alert, LLMJob, Run, WorkerHeartbeat
from eval.models.runs import regressed_schedules
from eval.providers import catalogue

AUTH_ERROR = "auth"  # the job error code of a rejected API key (eval/providers/errors.py)


def read(now, window_s):
    queue = LLMJob.objects.filter(status=states.QUEUED).aggregate(n=Count("pk"), oldest=Min("created_at"))
    providers = _providers()
    failed, ended = _window(providers, now - timedelta(seconds=window_s))
    return Snapshot(
        queued=queue["n"],
        oldest_queued_at=queue["oldest"],
        workers_online=heartbeats.online_count(now),
        last_worker_seen=WorkerHeartbeat.objects.aggregate(last=Max("last_seen"))["last"],
        ended=ended,
        failed=failed,
        auth_failed_at=_auth_failures(providers),
        refusals=_refusals(),
        regressions=_regressions(),
    )


def _providers():
    """The providers this deployment knows, and any an auth alert still names
    (a provider taken out of the catalogue would otherwise never resolve)."""
    alerted = Alert.objects.filter(active=True, rule=PROVIDER_AUTH).values_list("key", flat=True)
    known = set(catalogue.ENTRIES) | {entry.name for entry in catalogue.endpoints()}
    return sorted(known | {key.partition(":")[2] for key in alerted})


def _window(providers, since):
    """(failed, ended): jobs that ended since ``since`` (llmjob_provider_finished_idx)."""
    rows = (
        LLMJob.objects.filter(provider__in=providers, finished_at__gte=since, status__in=states.TERMINAL)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
    )
    counts = {row["status"]: row["n"] for row in rows}
    return counts.get(states.FAILED, 0), sum(counts.values())


def _auth_failures(providers):
    """provider -> when its latest decisive job (an auth error or a success) failed
    on auth; providers whose latest is a success, or who have none, are left out.
    One short backward walk of llmjob_provider_finished_idx each."""
    decisive = Q(status=states.SUCCEEDED) | Q(status=states.FAILED, error_code=AUTH_ERROR)
    found = {}
    for provider in providers:
        latest = (
            LLMJob.objects.filter(decisive, provider=provider, finished_at__isnull=False)
            .order_by("-finished_at")
            .values("status", "finished_at")
            .first()
        )
        if latest and latest["status"] == states.FAILED:
            found[provider] = latest["finished_at"]
    return found


def _refusals():
    """Scheduled runs whose last firing was refused (eval/evaluation/schedules.py records it;
    the next firing that launches clears it)."""
    rows = (
        Run.objects.filter(status=Run.Status.SCHEDULED, parent__isnull=True)
        .exclude(refused_reason="")
        .order_by("pk")
        .values("pk", "name", "refused_reason", "refused_at")
    )
    return tuple(Refusal(row["pk"], row["name"], row["refused_reason"], row["refused_at"]) for row in rows)


def _regressions():
    """Active schedules whose latest compared firing regressed (eval/models/runs.regressed_schedules)."""
    rows = regressed_schedules().order_by("pk").values("pk", "name", "firing", "words", "baseline", "at")
    return tuple(Regression(r["pk"], r["name"], r["firing"], r["baseline"], r["words"], r["at"]) for r in rows)
