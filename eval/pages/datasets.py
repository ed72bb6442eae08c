"""/datasets/: every dataset, its versions, and uploads with a preview (datasets.js
talks to /api/datasets; this view only draws the frame)."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from eval.access import may_manage_datasets
from eval.pages.common import page
from eval.sync.datasets import synced_dataset


@page
def datasets(request):
    if not may_manage_datasets(request.user):
        raise PermissionDenied("Datasets are managed by staff or holders of the eval.manage_datasets permission.")
    context = {
        "selected": request.GET.get("dataset", ""),
        "synced": synced_dataset(),
        "max_bytes": settings.DATASET_MAX_UPLOAD_BYTES,
    }
    return render(request, "datasets.html", context)
