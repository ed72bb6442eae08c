import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"

    source = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=500, blank=True)
    prompt = models.TextField()
    reference = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    missing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="task_source_external_id_uniq"),
        ]
        indexes = [models.Index(fields=["status", "id"], name="task_status_id_idx")]
        permissions = [("review_task", "Can review tasks and launch LLM jobs")]

    def __str__(self):
        return self.title or f"{self.source}:{self.external_id}"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class LLMJob(models.Model):
    """One model call for one task. Every state change goes through
    eval/jobs/lifecycle.py; nothing else writes status."""

    class Kind(models.TextChoices):
        GENERATE = "generate"

    class Priority(models.IntegerChoices):
        BULK = 0
        INTERACTIVE = 10

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GENERATE)
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_jobs"
    )
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.INTERACTIVE)

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

    cancel_requested = models.BooleanField(default=False)
    cancel_requested_by = models.CharField(max_length=150, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")

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

    @property
    def is_terminal(self):
        return self.status in TERMINAL_STATUSES


class Review(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    preferred_job = models.ForeignKey(LLMJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "reviewer"], name="review_task_reviewer_uniq"),
        ]

    def __str__(self):
        return f"review of {self.task_id} by {self.reviewer_id}"


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


from eval.models_ratelimit import ProviderRateSlot  # noqa: E402,F401  (provider-wide rate limit, ops issue)
from eval.models_tokens import ApiToken  # noqa: E402,F401  (API tokens, web issue)
