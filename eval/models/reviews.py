"""A reviewer's per-task summary."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from eval.models.jobs import LLMJob
from eval.models.tasks import Task


class Review(models.Model):
    MAX_NOTES_CHARS = 100_000  # the API's schema and the review page's field both say it

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
