"""Evaluation runs: a model over a task selection, now or on a schedule, and
the per-user daily spend that budgets are checked against (DESIGN "Evaluation").
The rules live in eval/evaluation/runs.py and friends."""

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q, Subquery

from eval.models.evaluation import Rubric


class Run(models.Model):
    class Kind(models.TextChoices):
        GENERATE = "generate"
        JUDGE = "judge"
        # Outputs produced elsewhere, uploaded with a dataset (provider "imported", model the label).
        IMPORTED = "imported"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"  # waits for its schedule or "launch now"
        RUNNING = "running"
        DONE = "done"
        CANCELLED = "cancelled"

    # A run that will run no more jobs of its own (the one list: quota, gate, cancel, pages).
    ENDED = (Status.DONE, Status.CANCELLED)

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.GENERATE)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    # The task selection as asked: {"source", "status", "ids", "limit"}; evaluated at launch.
    selection = models.JSONField(default=dict, blank=True)
    # Automatic checks of each output against the task's reference:
    # [{"type": "exact" | "contains" | "regex" | "json_valid", "pattern"?: str}]
    checks = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # A cron expression in TIME_ZONE; each firing launches a child run (parent = this one).
    schedule = models.CharField(max_length=100, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="firings")
    max_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    estimated_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    # The daily-budget reservation the run still holds for all its jobs (eval/jobs/quota.py):
    # charged to created_by on reserved_on at launch, settled to what the jobs cost once
    # the run has ended and none of its jobs is live. Null when nothing is held.
    reserved_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    reserved_on = models.DateField(null=True, blank=True)
    # Why the last firing of a schedule was refused (over max_cost_usd or the budget).
    refused_reason = models.TextField(blank=True)
    refused_at = models.DateTimeField(null=True, blank=True)
    # Judge runs: the rubric, and either two runs to compare or one to score.
    rubric = models.ForeignKey(Rubric, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    compare_a = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    compare_b = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    score_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    swap = models.BooleanField(default=False)
    # The version of its dataset when the run was made (its selection names one dataset).
    dataset_version = models.ForeignKey(
        "eval.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A generate run's prompt template (None: each task as it is).
    template = models.ForeignKey(
        "eval.PromptTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    # The dataset this run is the baseline of (one per dataset: marking another moves it).
    baseline_of = models.CharField(max_length=200, blank=True)
    # A schedule's firing, once done, is compared with its dataset's baseline
    # (eval/evaluation/compare/scheduled.py): when, against which run, and the
    # significant regressions found ("" for none; an alert while it holds).
    gated_at = models.DateTimeField(null=True, blank=True)
    gated_against = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    regression = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)  # +1 on every change of the run row itself
    created_at = models.DateTimeField(auto_now_add=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("launch_run", "Can create, launch and cancel evaluation runs")]
        indexes = [
            # The daemon's schedule step: due scheduled runs.
            models.Index(fields=["next_run_at"], name="run_due_idx", condition=~Q(schedule="")),
            # Reservations still held (eval/jobs/quota.py settles them).
            models.Index(fields=["created_by"], name="run_reserved_idx", condition=Q(reserved_usd__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["baseline_of"], name="run_one_baseline_per_dataset", condition=~Q(baseline_of="")
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.kind}, {self.status})"


def regressed_schedules():
    """Active schedules whose latest compared firing regressed against its dataset's
    baseline (eval/evaluation/compare/scheduled.py writes ``regression``), with that
    firing's id (``firing``), words, baseline and time: what the alert rule and the
    metrics gauge read. The next clean firing takes a schedule out."""
    latest = Run.objects.filter(parent=OuterRef("pk"), gated_at__isnull=False).order_by("-gated_at", "-pk")
    return (
        Run.objects.filter(status=Run.Status.SCHEDULED, parent__isnull=True)
        .exclude(schedule="")
        .annotate(
            firing=Subquery(latest.values("pk")[:1]),
            words=Subquery(latest.values("regression")[:1]),
            baseline=Subquery(latest.values("gated_against")[:1]),
            at=Subquery(latest.values("gated_at")[:1]),
        )
        .exclude(words="")
        .exclude(words__isnull=True)
    )


class DailySpend(models.Model):
    """What a user's spends have committed on one day: the estimates of the jobs
    and runs still reserved, plus what the settled ones actually cost
    (eval/jobs/quota.py). USER_DAILY_BUDGET_USD is checked against it with one
    conditional UPDATE, so parallel launches cannot overspend."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="daily_spend_user_day_uniq")]

    def __str__(self):
        return f"{self.user_id} on {self.day}: {self.reserved_usd}"
