"""Alerts (DESIGN "Alerts"): one row per alert the daemon has raised, keyed by
what it is about, and the notices it owes the channels. The rows are the
alerts' memory, so a daemon that takes over from another neither fires an
alert again nor forgets to say it resolved. The rules live in eval/alerts/."""

from django.db import models
from django.db.models import Q


class Alert(models.Model):
    class Rule(models.TextChoices):
        NO_WORKER = "no_worker"
        QUEUE_AGE = "queue_age"
        FAILURE_RATE = "failure_rate"
        PROVIDER_AUTH = "provider_auth"
        SCHEDULE_REFUSED = "schedule_refused"
        RUN_REGRESSION = "run_regression"  # a schedule's latest firing regressed against the baseline

    # The rule and what it is about: "queue_age", "provider_auth:gemini", "schedule_refused:12".
    key = models.CharField(max_length=200, unique=True)
    rule = models.CharField(max_length=30, choices=Rule.choices)
    message = models.TextField()
    active = models.BooleanField(default=False)
    since = models.DateTimeField()  # when the current (or last) episode began
    notified_at = models.DateTimeField()  # its last firing or repeat notice was made
    resolved_at = models.DateTimeField(null=True, blank=True)
    # +1 on every fire, repeat and resolve: each is one UPDATE fenced by the version read,
    # so of two daemons acting on the same reading only one changes the row (and owes notices).
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["since", "key"]
        indexes = [models.Index(fields=["since"], name="alert_active_idx", condition=Q(active=True))]

    def __str__(self):
        return f"{self.key} ({'active' if self.active else 'resolved'})"


class AlertNotice(models.Model):
    """One message owed to one channel. Made in the same transaction as the
    alert's change; a daemon claims it (claimed_until) before sending, and a
    send that fails is tried again on the next pass."""

    class Kind(models.TextChoices):
        FIRING = "firing"
        REPEAT = "repeat"
        RESOLVED = "resolved"

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    class Outcome(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        DROPPED = "dropped"  # still failing after a day

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    text = models.TextField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)  # a send in progress
    last_error = models.CharField(max_length=300, blank=True)  # never the webhook's URL
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The daemon's delivery step: notices still owed.
            models.Index(fields=["created_at"], name="alertnotice_pending_idx", condition=Q(outcome="pending")),
        ]

    def __str__(self):
        return f"{self.kind} of {self.alert_id} by {self.channel} ({self.outcome})"
