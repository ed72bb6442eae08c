"""Event metrics, counted in the process where the event happens.

The hooks take what the caller has: a value that is unknown (None) or odd
(negative, not a number, not finite) is skipped, that sample only; the rest
of the call is recorded. A broken multiprocess directory (removed, disk
full) is logged, never raised: metrics must not fail a job or a poll.
"""

import logging
import math
import os
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

log = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
LABEL_MAX = 100

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


def label(value, default="unknown"):
    """A label value: text, trimmed, at most LABEL_MAX characters; ``default`` when empty."""
    text = str(value).strip() if value is not None else ""
    return text[:LABEL_MAX] or default


def amount(value):
    """A finite number >= 0, or None: unknown (None), not a number (text,
    an object, a bool), negative, NaN or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def status_code(value):
    """An HTTP status as text ("200", "304"), or None when the value is not one."""
    if isinstance(value, bool):
        return None
    try:
        code = int(value)
    except (TypeError, ValueError):
        return None
    return str(code) if 100 <= code <= 599 else None


@contextmanager
def _recording(what):
    """In multiprocess mode a sample is written to a file in the directory:
    a removed directory or a full disk is an OSError, logged and dropped."""
    try:
        yield
    except OSError:
        log.warning("could not record %s metrics (PROMETHEUS_MULTIPROC_DIR %s)", what, MULTIPROC_DIR, exc_info=True)


def _observe(histogram, labels, value):
    if value is not None:
        histogram.labels(*labels).observe(value)


def _add(counter, labels, value):
    if value:  # None (unknown or odd) or 0: nothing to add
        counter.labels(*labels).inc(value)


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
    a retry, handed_back, lost). A numeric argument that is None or odd is
    skipped (see ``amount``); the others are recorded."""
    provider, model, status = label(provider), label(model), label(status)
    with _recording("job"):
        _observe(JOB_DURATION, (provider, model, status), amount(duration_s))
        _observe(QUEUE_WAIT, (provider,), amount(queue_wait_s))
        if error_code:
            PROVIDER_ERRORS.labels(provider, label(error_code)).inc()
        _add(TOKENS, (provider, model, "input"), amount(input_tokens))
        _add(TOKENS, (provider, model, "output"), amount(output_tokens))
        _add(COST, (provider, model), amount(cost_usd))


def observe_poll(code):
    """Count one poll request by its HTTP status (200, 304, ...); a value that is no status is skipped."""
    code = status_code(code)
    if code is None:
        return
    with _recording("poll"):
        POLL_REQUESTS.labels(code).inc()
