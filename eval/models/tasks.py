"""Evaluation tasks, synced from a source (eval/sync/)."""

from django.db import models


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
