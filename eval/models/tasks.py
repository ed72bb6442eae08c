"""Evaluation tasks, synced from a source (eval/sync/)."""

import hashlib
import json

from django.db import models


def prompt_fingerprint(prompt, reference, messages=None):
    """SHA-256 of what a judgement judges against: the prompt and the
    reference, each prefixed by its length (no separator can be forged), and a
    conversation's messages when the task has them (canonical JSON, appended
    only then, so the hash of a task without messages never changed).
    Title and metadata do not count: editing them never makes a judgement stale."""
    prompt, reference = prompt or "", reference or ""
    text = f"{len(prompt)}:{prompt}{len(reference)}:{reference}"
    if messages:
        turns = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        text += f"{len(turns)}:{turns}"
    return hashlib.sha256(text.encode()).hexdigest()


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"

    source = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200)
    title = models.CharField(max_length=500, blank=True)
    prompt = models.TextField()
    reference = models.TextField(blank=True)
    # A conversation instead of one prompt: [{"role": "system"|"user"|"assistant",
    # "content": str}, ...], the last one "user"; null for a one-prompt task.
    messages = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    # prompt_fingerprint(prompt, reference), kept by whoever writes those two.
    prompt_hash = models.CharField(max_length=64, blank=True)
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
        permissions = [
            ("review_task", "Can review tasks and launch LLM jobs"),
            ("manage_datasets", "Can import, edit and remove datasets"),
        ]

    def __str__(self):
        return self.title or f"{self.source}:{self.external_id}"

    def save(self, *args, **kwargs):
        self.prompt_hash = prompt_fingerprint(self.prompt, self.reference, self.messages)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"prompt", "reference", "messages"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "prompt_hash"}
        super().save(*args, **kwargs)
