"""Prometheus metrics: ``GET /metrics`` and the hooks that feed it.

Two kinds of numbers:

* **State, read from the database at scrape time** (``DatabaseCollector``):
  jobs by status, the oldest queued job's age, workers online. The database
  is the single source of truth, so these are right whatever the number of
  web, worker or daemon processes, and on every web VM behind a balancer.

* **Events, counted where they happen**: ``observe_job()`` in the worker
  (duration and queue-wait histograms, provider errors by kind, tokens,
  cost) and ``observe_poll()`` in the poll endpoint (requests by status
  code, hence the 304 ratio). Each process counts its own events, so with
  several processes the counts must be summed across them:

  - ``PROMETHEUS_MULTIPROC_DIR`` set (``run_services.py`` sets it, to a fresh
    directory, for every child it starts): prometheus-client's multiprocess
    mode. Every process writes its samples to memory-mapped files in that
    directory and a scrape, answered by any gunicorn worker, merges the
    files of all processes on the machine (web, worker, daemon). Only
    counters and histograms are used (no live gauges), so files of dead
    processes stay correct and no ``mark_process_dead`` hook is needed.
  - unset (tests, ``manage.py runserver``, a one-off command): a plain
    in-process registry.

  The mode is fixed when the process starts (prometheus-client reads the
  variable when it is first imported), so set it in the environment, never
  from code.

A machine that runs workers but no web server (scaling out) serves its
event counters with ``python -m eval.metrics --listen 127.0.0.1:9464`` (the
``eval-metrics.service`` unit), reading the same directory; the database
gauges come from any web VM's ``/metrics``.
"""

import argparse
import hmac
import logging
import os
import sys
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

# ``*_created`` series add nothing here and do not exist in multiprocess mode:
# leave them out so both modes print the same families.
disable_created_metrics()

# Where this process's event metrics live. In multiprocess mode the values go
# to files whatever the registry; the registry only matters in plain mode.
EVENTS = CollectorRegistry()

JOB_DURATION = Histogram(
    "eval_job_duration_seconds",
    "Wall time of one job attempt in the worker, by how it ended.",
    ["provider", "model", "status"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
    registry=EVENTS,
)
QUEUE_WAIT = Histogram(
    "eval_job_queue_wait_seconds",
    "Time a job waited in the queue before a worker started the attempt.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
    registry=EVENTS,
)
PROVIDER_ERRORS = Counter(
    "eval_provider_errors",
    "Failed or retried job attempts, by job error code (rate_limited, overloaded, timeout, ...).",
    ["provider", "code"],
    registry=EVENTS,
)
TOKENS = Counter(
    "eval_tokens",
    "Tokens consumed by finished job attempts.",
    ["provider", "model", "direction"],
    registry=EVENTS,
)
COST = Counter(
    "eval_cost_usd",
    "Estimated cost in US dollars of finished job attempts.",
    ["provider", "model"],
    registry=EVENTS,
)
POLL_REQUESTS = Counter(
    "eval_poll_requests",
    "Job poll requests (GET /api/tasks/<id>/jobs) by HTTP status; 304 means nothing changed.",
    ["code"],
    registry=EVENTS,
)


def _label(value, default="unknown"):
    text = str(value).strip() if value is not None else ""
    return text[:100] or default


def _number(value):
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def observe_job(
    provider,
    model,
    status,
    error_code=None,
    duration_s=None,
    queue_wait_s=None,
    input_tokens=None,
    output_tokens=None,
    cost_usd=None,
):
    """Record one finished job attempt (called by the worker's executor).

    ``status``: how the attempt ended (succeeded, failed, cancelled, queued for
    a retry, handed_back, lost). Any numeric argument may be None (unknown).
    Never raises: metrics must not break a job."""
    try:
        provider, model, status = _label(provider), _label(model), _label(status)
        duration = _number(duration_s)
        if duration is not None:
            JOB_DURATION.labels(provider, model, status).observe(duration)
        wait = _number(queue_wait_s)
        if wait is not None:
            QUEUE_WAIT.labels(provider).observe(wait)
        if error_code:
            PROVIDER_ERRORS.labels(provider, _label(error_code)).inc()
        for direction, count in (("input", input_tokens), ("output", output_tokens)):
            count = _number(count)
            if count:
                TOKENS.labels(provider, model, direction).inc(count)
        cost = _number(cost_usd)
        if cost:
            COST.labels(provider, model).inc(cost)
    except Exception:  # pragma: no cover - a broken metrics dir must not fail jobs
        log.warning("could not record job metrics", exc_info=True)


def observe_poll(status_code):
    """Count one poll request by its HTTP status (200, 304, ...). Never raises."""
    try:
        POLL_REQUESTS.labels(str(int(status_code))).inc()
    except Exception:  # pragma: no cover
        log.warning("could not record poll metrics", exc_info=True)


class DatabaseCollector:
    """Gauges read from the database at each scrape (one small query each)."""

    def collect(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from eval.jobs import heartbeats, states
        from eval.models import LLMJob

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

        online = heartbeats.online_count(now)
        yield GaugeMetricFamily(
            "eval_workers_online",
            f"Workers whose heartbeat is under {heartbeats.ONLINE_SECONDS} s old.",
            value=online,
        )


class _ScrapeHealth:
    """``eval_metrics_database_up``: 0 when the database gauges could not be read."""

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


def build_registry(*, multiproc_dir=None, database=True):
    """The registry one scrape reads: event metrics (merged across processes in
    multiprocess mode) plus, with ``database``, the database gauges."""
    multiproc_dir = multiproc_dir or MULTIPROC_DIR
    if multiproc_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(EVENTS))
    if database:
        registry.register(_ScrapeHealth(DatabaseCollector()))
    return registry


class _Forward:
    """Expose another registry's metrics (the plain-mode event registry)."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()


def render(**options):
    return generate_latest(build_registry(**options))


# --- the view -------------------------------------------------------------------


def _bearer(request):
    """The Bearer credentials sent, or None when no Authorization header came."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def metrics_view(request):
    """``GET /metrics``: a staff session or ``Authorization: Bearer <METRICS_TOKEN>``
    (compared in constant time). Anonymous without a token: 401; anything else
    refused (wrong token, logged-in non-staff): 403."""
    from django.conf import settings
    from django.http import HttpResponse

    from eval.api.errors import error_response

    if request.method not in ("GET", "HEAD"):
        return error_response("method_not_allowed", f"{request.method} is not allowed here", headers={"Allow": "GET"})
    sent = _bearer(request)
    expected = settings.METRICS_TOKEN
    token_ok = bool(sent and expected) and hmac.compare_digest(sent.encode(), expected.encode())
    user = getattr(request, "user", None)
    logged_in = bool(user is not None and user.is_authenticated)
    if not (token_ok or (logged_in and (user.is_staff or user.is_superuser))):
        if sent is None and not logged_in:
            return error_response(
                "unauthenticated",
                "log in as staff or send Authorization: Bearer <METRICS_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return error_response("forbidden", "metrics need a staff login or the metrics token")
    response = HttpResponse(render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response


# --- a stand-alone exporter for machines without a web server --------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m eval.metrics",
        description="Serve this machine's event metrics (PROMETHEUS_MULTIPROC_DIR) over HTTP, "
        "for VMs that run workers but no web server. No database gauges.",
    )
    parser.add_argument("--listen", default="127.0.0.1:9464", help="host:port (default 127.0.0.1:9464)")
    args = parser.parse_args(argv)
    if not MULTIPROC_DIR or not Path(MULTIPROC_DIR).is_dir():
        print("eval.metrics: PROMETHEUS_MULTIPROC_DIR must name an existing directory", file=sys.stderr)
        return 1
    host, _, port = args.listen.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        parser.error("--listen must be host:port")
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=MULTIPROC_DIR)
    server = make_server(host or "127.0.0.1", port, make_wsgi_app(registry))
    print(f"eval.metrics: serving {MULTIPROC_DIR} on http://{host}:{port}/metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
