"""The alert rules (DESIGN "Alerts"): pure functions from what the database
said (a ``Snapshot``, read by snapshot.py) and the time to the conditions that
hold now. No queries and no clock here, so each rule is tested with made-up
numbers; state.py turns the conditions into fired, repeated and resolved alerts.

Each condition has a key naming the rule and what it is about (one alert per
provider, per scheduled run), the words an operator reads, and since when it
holds as far as the data tells (the alert keeps the time it first fired).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from eval.models import Alert

Rule = Alert.Rule
NO_WORKER, QUEUE_AGE, FAILURE_RATE = Rule.NO_WORKER.value, Rule.QUEUE_AGE.value, Rule.FAILURE_RATE.value
PROVIDER_AUTH, SCHEDULE_REFUSED = Rule.PROVIDER_AUTH.value, Rule.SCHEDULE_REFUSED.value
RUN_REGRESSION = Rule.RUN_REGRESSION.value


@dataclass(frozen=True)
class Limits:
    no_worker_s: float
    queue_age_s: float
    window_s: float
    failure_rate: float
    min_failures: int

    @classmethod
    def from_settings(cls):
        return cls(
            no_worker_s=settings.ALERT_NO_WORKER_SECONDS,
            queue_age_s=settings.ALERT_QUEUE_AGE_SECONDS,
            window_s=settings.ALERT_WINDOW_SECONDS,
            failure_rate=settings.ALERT_FAILURE_RATE,
            min_failures=settings.ALERT_MIN_FAILURES,
        )


@dataclass(frozen=True)
class Refusal:
    run_id: int
    name: str
    reason: str
    at: datetime | None


@dataclass(frozen=True)
class Regression:
    """A schedule whose latest firing regressed against its dataset's baseline."""

    schedule_id: int
    name: str
    firing_id: int
    baseline_id: int | None
    words: str
    at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    queued: int = 0
    oldest_queued_at: datetime | None = None
    workers_online: int = 0
    last_worker_seen: datetime | None = None  # newest heartbeat of any worker; None: none known
    ended: int = 0  # jobs that ended in the window (any final status)
    failed: int = 0  # of which failed
    auth_failed_at: dict[str, datetime] = field(default_factory=dict)  # provider -> auth error with no success since
    refusals: tuple[Refusal, ...] = ()
    regressions: tuple[Regression, ...] = ()


@dataclass(frozen=True)
class Condition:
    key: str
    rule: str
    message: str
    since: datetime


def evaluate(snapshot, now, limits):
    """Every condition that holds at ``now``."""
    found = [
        no_worker(snapshot, now, limits),
        queue_age(snapshot, now, limits),
        failure_rate(snapshot, now, limits),
    ]
    found += provider_auth(snapshot)
    found += schedule_refused(snapshot, now)
    found += run_regression(snapshot, now)
    return [condition for condition in found if condition is not None]


def no_worker(snapshot, now, limits):
    """Jobs queued and no worker online for ``no_worker_s``: counted from the later
    of the oldest queued job and the last heartbeat of any worker."""
    if not snapshot.queued or snapshot.workers_online:
        return None
    starts = [m for m in (snapshot.oldest_queued_at, snapshot.last_worker_seen) if m is not None]
    since = max(starts) if starts else now
    if (now - since).total_seconds() < limits.no_worker_s:
        return None
    return Condition(
        NO_WORKER,
        NO_WORKER,
        f"{snapshot.queued} job(s) queued and no worker online for {duration(now - since)}",
        since,
    )


def queue_age(snapshot, now, limits):
    oldest = snapshot.oldest_queued_at
    if oldest is None:
        return None
    age = now - oldest
    if age.total_seconds() <= limits.queue_age_s:
        return None
    return Condition(
        QUEUE_AGE,
        QUEUE_AGE,
        f"the oldest queued job has waited {duration(age)} (limit {duration(timedelta(seconds=limits.queue_age_s))})",
        oldest + timedelta(seconds=limits.queue_age_s),
    )


def failure_rate(snapshot, now, limits):
    if snapshot.failed < limits.min_failures or not snapshot.ended:
        return None
    share = snapshot.failed / snapshot.ended
    if share <= limits.failure_rate:
        return None
    window = duration(timedelta(seconds=limits.window_s))
    return Condition(
        FAILURE_RATE,
        FAILURE_RATE,
        f"{snapshot.failed} of the {snapshot.ended} jobs that ended in the last {window} failed ({share:.0%}; "
        f"limit {limits.failure_rate:.0%})",
        now,
    )


def provider_auth(snapshot):
    """At once: a provider's latest decisive job (an auth error or a success) is an auth error."""
    return [
        Condition(
            f"{PROVIDER_AUTH}:{provider}",
            PROVIDER_AUTH,
            f"{provider} rejected the API key (auth error at {at:%Y-%m-%d %H:%M:%S} UTC); "
            "its next successful job resolves this",
            at,
        )
        for provider, at in sorted(snapshot.auth_failed_at.items())
    ]


def schedule_refused(snapshot, now):
    return [
        Condition(
            f"{SCHEDULE_REFUSED}:{refusal.run_id}",
            SCHEDULE_REFUSED,
            f"scheduled run {refusal.run_id} ({refusal.name}) was refused: {refusal.reason}",
            refusal.at or now,
        )
        for refusal in snapshot.refusals
    ]


def duration(delta):
    """A span in words: 45 s, 12 min, 3.5 h."""
    seconds = max(0.0, delta.total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_regression(snapshot, now):
    """One alert per schedule while its latest compared firing regressed; its next clean firing resolves it."""
    return [
        Condition(
            f"{RUN_REGRESSION}:{found.schedule_id}",
            RUN_REGRESSION,
            f"scheduled run {found.schedule_id} ({found.name}): firing {found.firing_id} regressed against "
            f"baseline run {found.baseline_id}: {found.words}",
            found.at or now,
        )
        for found in snapshot.regressions
    ]
