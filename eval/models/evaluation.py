"""What reviewers produce: rubrics, judgements, blind pair assignments and
review drafts (DESIGN "Evaluation"). The rules live in eval/evaluation/."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from eval.models.jobs import LLMJob
from eval.models.tasks import Task


class Rubric(models.Model):
    """Questions a reviewer answers, with guidelines. Never edited in place once
    used: an edit makes a new version (the admin does so)."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    guidelines = models.TextField(blank=True, help_text="Shown to reviewers above the questions.")
    # [{"key", "label", "type": rating|choice|boolean|text, "scale": [1, 5], "options": [...], "required"}]
    questions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="rubric_name_version_uniq")]

    def __str__(self):
        return f"{self.name} v{self.version}"


class SourceRubric(models.Model):
    """The rubric for a task source's tasks (by source name); others get the built-in default."""

    source = models.CharField(max_length=200, unique=True)
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="sources")

    class Meta:
        verbose_name = "source rubric"

    def __str__(self):
        return f"{self.source}: {self.rubric}"


class Judgement(models.Model):
    """One verdict, append-only: a new one by the same judge on the same jobs
    supersedes the earlier (which stays); a withdrawn one is kept, never counted."""

    class Kind(models.TextChoices):
        SCORE = "score"
        PAIRWISE = "pairwise"

    class Verdict(models.TextChoices):
        A = "a"
        B = "b"
        TIE = "tie"
        BOTH_BAD = "both_bad"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="judgements")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="judgements"
    )
    judge_job = models.ForeignKey(LLMJob, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    job_a = models.ForeignKey(LLMJob, on_delete=models.PROTECT, related_name="+")
    job_b = models.ForeignKey(LLMJob, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # What was judged, pinned: the outputs and the prompt as they were.
    output_hash_a = models.CharField(max_length=64)
    output_hash_b = models.CharField(max_length=64, blank=True)
    prompt_hash = models.CharField(max_length=64)
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="judgements")
    answers = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    shown_left = models.ForeignKey(LLMJob, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    blind = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # An LLM judge's settings, pinned (judge_job set).
    judge_provider = models.CharField(max_length=40, blank=True)
    judge_model = models.CharField(max_length=100, blank=True)
    judge_params = models.JSONField(default=dict, blank=True)
    judge_prompt_version = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["task", "reviewer"], name="judgement_task_reviewer_idx"),
            models.Index(fields=["job_a", "job_b"], name="judgement_jobs_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(reviewer__isnull=False, judge_job__isnull=True)
                | Q(reviewer__isnull=True, judge_job__isnull=False),
                name="judgement_one_judge",
            ),
            models.CheckConstraint(
                condition=Q(kind="score", job_b__isnull=True, verdict="")
                | Q(kind="pairwise", job_b__isnull=False, verdict__in=["a", "b", "tie", "both_bad"]),
                name="judgement_kind_shape",
            ),
            # A judgement is superseded at most once: the chain stays a line.
            models.UniqueConstraint(fields=["supersedes"], name="judgement_supersedes_once"),
        ]

    def __str__(self):
        return f"{self.kind} judgement {self.pk} of task {self.task_id}"


class PairAssignment(models.Model):
    """A blind pair served to one reviewer. Its random ``token`` is all the
    page and the API ever show: the jobs stay on the server until the verdict."""

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pair_assignments")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    job_a = models.ForeignKey(LLMJob, on_delete=models.CASCADE, related_name="+")
    job_b = models.ForeignKey(LLMJob, on_delete=models.CASCADE, related_name="+")
    shown_left = models.ForeignKey(LLMJob, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    skipped_at = models.DateTimeField(null=True, blank=True)
    judgement = models.OneToOneField(
        Judgement, null=True, blank=True, on_delete=models.SET_NULL, related_name="pair_assignment"
    )

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="pair_user_created_idx")]

    def __str__(self):
        return f"pair for {self.user_id} on task {self.task_id}"


class ReviewDraft(models.Model):
    """A reviewer's unsaved review form for a task, kept on the server so
    another device sees it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "task"], name="review_draft_user_task_uniq")]

    def __str__(self):
        return f"draft of {self.user_id} on task {self.task_id}"


class ModelSeen(models.Model):
    """That a user was shown a job's output together with its model (review
    page, job JSON, a pair's reveal after a verdict). From then on no pair with
    that output is served to the user blind, and a verdict of theirs on it is
    stored ``blind: false``. Rows are only added: a withdrawn verdict does not
    make a model unknown again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey(LLMJob, on_delete=models.CASCADE, related_name="+")
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "models seen"
        constraints = [models.UniqueConstraint(fields=["user", "job"], name="model_seen_user_job_uniq")]

    def __str__(self):
        return f"{self.user_id} saw the model of job {self.job_id}"
