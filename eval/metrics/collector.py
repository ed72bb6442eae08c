"""What one scrape reads: the event metrics (merged across processes in
multiprocess mode) and gauges read from the database at scrape time."""

import logging

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from eval.jobs import heartbeats, states
from eval.metrics import events
from eval.models import LLMJob, Run
from eval.models.runs import regressed_schedules

log = logging.getLogger(__name__)


class DatabaseCollector:
    """Gauges read from the database at each scrape (one small query each)."""

    def collect(self):
        now = timezone.now()
        jobs = GaugeMetricFamily("eval_jobs", "Jobs by status, from the database.", labels=["status"])
        counts = dict.fromkeys(states.ALL, 0)
        for row in LLMJob.objects.order_by().values("status").annotate(n=Count("id")):
            counts[row["status"]] = row["n"]
        for status, count in counts.items():
            jobs.add_metric([status], count)
        yield jobs

        oldest = LLMJob.objects.filter(status=states.QUEUED).aggregate(oldest=Min("created_at"))["oldest"]
        yield GaugeMetricFamily(
            "eval_oldest_queued_job_age_seconds",
            "Age of the oldest queued job (0 when none is queued).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )

        yield GaugeMetricFamily(
            "eval_workers_online",
            f"Workers whose heartbeat is under {heartbeats.ONLINE_SECONDS} s old.",
            value=heartbeats.online_count(now),
        )

        # Scheduled runs whose last firing was refused (over max_cost_usd or the budget):
        # the alert rule deploy/prometheus-alerts.yml shares with eval/alerts/. A few rows.
        refused = Run.objects.filter(status=Run.Status.SCHEDULED, parent__isnull=True).exclude(refused_reason="")
        yield GaugeMetricFamily(
            "eval_scheduled_runs_refused",
            "Scheduled runs whose last firing was refused (cleared by the next firing that launches).",
            value=refused.count(),
        )
        yield GaugeMetricFamily(
            "eval_scheduled_runs_regressed",
            "Scheduled runs whose latest firing regressed against its dataset's baseline (cleared by a clean one).",
            value=regressed_schedules().count(),
        )


class ScrapeHealth:
    """``eval_metrics_database_up``: 0 when the database gauges could not be read
    (the scrape still answers, with the event metrics)."""

    def __init__(self, inner):
        self.inner = inner

    def collect(self):
        try:
            families = list(self.inner.collect())
            up = 1
        except Exception as error:
            log.warning("metrics: database gauges unavailable (%s)", type(error).__name__)
            families, up = [], 0
        yield from families
        yield GaugeMetricFamily("eval_metrics_database_up", "1 if the database gauges were read.", value=up)


class Forward:
    """Expose another registry's metrics (the plain-mode event registry)."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()


def build_registry(*, multiproc_dir=None, database=True):
    """The registry one scrape reads: event metrics plus, with ``database``, the database gauges."""
    multiproc_dir = multiproc_dir or events.MULTIPROC_DIR
    registry = CollectorRegistry()
    if multiproc_dir:
        MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry.register(Forward(events.EVENTS))
    if database:
        registry.register(ScrapeHealth(DatabaseCollector()))
    return registry


def render(**options):
    return generate_latest(build_registry(**options))
