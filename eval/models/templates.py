"""Prompt templates (DESIGN "Datasets, templates..."): a system prompt and user
messages with Jinja2 variables from the task, versioned like rubrics. A row never
changes once saved: saving a template again under its name makes the next version,
so a job's ``template`` is always what rendered its ``messages_sent``."""

from django.conf import settings
from django.db import models


class PromptTemplate(models.Model):
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    # Jinja2 source (eval/jobs/prompt_templates.py renders it, sandboxed).
    system = models.TextField(blank=True)
    # [{"role": "user" | "assistant", "content": template source}], the last one "user".
    messages = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="template_name_version_uniq")]

    def __str__(self):
        return f"{self.name} v{self.version}"
