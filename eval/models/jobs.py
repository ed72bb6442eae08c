"""LLM jobs and the workers that run them. Every job state change goes
through eval/jobs/transitions.py and eval/jobs/endings.py; nothing else
writes ``status``."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from eval.models.tasks import Task


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The status sets the queryset below filters on; eval/jobs/states.py names them
# (states.LIVE, states.TERMINAL) for every other caller.
LIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class LLMJobQuerySet(models.QuerySet):
    def live(self):
        """Jobs still to end: queued or running."""
        return self.filter(status__in=LIVE_STATUSES)

    def judgeable(self):
        """Outputs that can be judged (by a person, a judge run, a blind pair, the
        results): succeeded generate jobs that nobody hid."""
        return self.filter(kind=LLMJob.Kind.GENERATE, status=JobStatus.SUCCEEDED, hidden=False)


class LLMJob(models.Model):
    """One model call for one task. Every state change goes through
    eval/jobs/transitions.py and endings.py; nothing else writes status."""

    class Kind(models.TextChoices):
        GENERATE = "generate"
        JUDGE = "judge"  # an LLM judging judged_a (and judged_b) under its run's rubric

    class Priority(models.IntegerChoices):
        BULK = 0
        INTERACTIVE = 10

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GENERATE)
    # Every index is written on each status change (not a HOT update): foreign keys
    # get no index of their own where a composite or partial one in Meta covers them.
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="jobs", db_index=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="llm_jobs",
        db_index=False,
    )
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.INTERACTIVE)
    # The task's prompt_hash when the job was created: judgements of its output pin it.
    prompt_hash = models.CharField(max_length=64, blank=True)
    # Hidden from pages, pairs and results (kept; reversible by its creator or staff).
    hidden = models.BooleanField(default=False)
    run = models.ForeignKey(
        "eval.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs", db_index=False
    )
    # A judge job's subject: the output judged (a score) or the two compared, in the order shown to the judge.
    judged_a = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    judged_b = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The prompt sent when it is not the task's own (an LLM judge's, built from the outputs it judges).
    prompt_text = models.TextField(blank=True)
    # Generate jobs: the template that rendered the prompt (None: the task as it is), and
    # exactly the messages sent ([{"role", "content"}], system first), fixed when created.
    template = models.ForeignKey(
        "eval.PromptTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs", db_index=False
    )
    messages_sent = models.JSONField(null=True, blank=True)
    # The run's automatic checks of this output, set as it succeeds: {"exact": true, "regex": false}.
    check_results = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    output = models.TextField(blank=True)
    output_hash = models.CharField(max_length=64, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)

    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    available_at = models.DateTimeField()

    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    # The daily-budget reservation this job still holds (eval/jobs/quota.py): its estimate,
    # charged to created_by on reserved_on, until the job has ended and it is settled to
    # cost_usd. Null when nothing is held (no budget, a run's job: the run holds it).
    reserved_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    reserved_on = models.DateField(null=True, blank=True)

    cancel_requested = models.BooleanField(default=False)
    cancel_requested_by = models.CharField(max_length=150, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries", db_index=False
    )

    worker_id = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    idempotency_hash = models.CharField(max_length=64, blank=True)
    version = models.PositiveIntegerField(default=1)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LLMJobQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        verbose_name = "LLM job"
        indexes = [
            # The db transport's claim: queued rows by priority then age.
            models.Index(
                fields=["-priority", "available_at", "created_at"],
                name="llmjob_claim_idx",
                condition=Q(status="queued"),
            ),
            # The poll: one task's jobs and their versions (ETag).
            models.Index(fields=["task", "created_at"], name="llmjob_task_idx"),
            # Repairs: expired leases and unpublished jobs.
            models.Index(fields=["lease_expires_at"], name="llmjob_lease_idx", condition=Q(status="running")),
            models.Index(fields=["published_at"], name="llmjob_unpublished_idx", condition=Q(status="queued")),
            models.Index(fields=["created_by", "status"], name="llmjob_user_status_idx"),
            # Alerts (eval/alerts/snapshot.py): a provider's latest ended jobs, and those that ended lately.
            models.Index(fields=["provider", "finished_at"], name="llmjob_provider_finished_idx"),
            # A run's page: its jobs' newest change is its ETag (no hot counter row).
            models.Index(fields=["run", "updated_at"], name="llmjob_run_updated_idx", condition=Q(run__isnull=False)),
            models.Index(fields=["run", "status"], name="llmjob_run_status_idx", condition=Q(run__isnull=False)),
            # Foreign keys that are mostly empty: only the rows that have one are indexed.
            models.Index(fields=["judged_a"], name="llmjob_judged_a_idx", condition=Q(judged_a__isnull=False)),
            models.Index(fields=["judged_b"], name="llmjob_judged_b_idx", condition=Q(judged_b__isnull=False)),
            models.Index(fields=["retry_of"], name="llmjob_retry_of_idx", condition=Q(retry_of__isnull=False)),
            # Reservations still held (eval/jobs/quota.py settles them): none while budgets are off.
            models.Index(fields=["created_by"], name="llmjob_reserved_idx", condition=Q(reserved_usd__isnull=False)),
            models.Index(fields=["template"], name="llmjob_template_idx", condition=Q(template__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                name="llmjob_idempotency_uniq",
                condition=~Q(idempotency_key=""),
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="llmjob_progress_lte_100"),
        ]

    def __str__(self):
        return f"{self.provider}/{self.model} {self.status} ({self.id})"


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    transport = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    jobs_done = models.PositiveIntegerField(default=0)
    jobs_failed = models.PositiveIntegerField(default=0)
    in_flight = models.PositiveIntegerField(default=0)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self):
        return self.worker_id
