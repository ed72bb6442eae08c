"""Datasets: a dataset is a task source (``Task.source`` is its name). Each
import that changed something is a numbered version (DESIGN "Datasets")."""

from django.conf import settings
from django.db import models


class DatasetVersionQuerySet(models.QuerySet):
    def record(self, dataset, **fields):
        """The dataset's next version (uploads into one dataset are serialised by
        eval/sync/upload.py; the sync daemon has one active instance)."""
        last = self.filter(dataset=dataset).order_by("-number").values_list("number", flat=True).first()
        return self.create(dataset=dataset, number=(last or 0) + 1, **fields)


class DatasetVersion(models.Model):
    """One import into a dataset that changed it: who, when, from which file,
    and what it did. Numbers count up from 1 per dataset."""

    class Mode(models.TextChoices):
        APPEND = "append"
        REPLACE = "replace"

    dataset = models.CharField(max_length=200)  # Task.source
    number = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.APPEND)
    file_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)  # marked missing by this import
    unchanged = models.PositiveIntegerField(default=0)
    outputs = models.PositiveIntegerField(default=0)  # imported outputs added or changed

    objects = DatasetVersionQuerySet.as_manager()

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_uniq"),
        ]

    def __str__(self):
        return f"{self.dataset} v{self.number}"
