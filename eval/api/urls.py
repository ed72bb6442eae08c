"""URLs under /api/ (no trailing slashes, DESIGN). Ids are matched loosely in
the URL and checked by the endpoints, so a malformed id is a JSON 404."""

from django.urls import path, re_path

from eval.api import datasets, plain
from eval.api.app import api

_ninja = api.url_patterns()
_task_jobs = next(pattern for pattern in _ninja if pattern.name == "api-task-jobs")
_imports = next(pattern for pattern in _ninja if pattern.name == "api-dataset-imports")

urlpatterns = [
    # First, and outside django-ninja: every open review tab polls it every 2 s.
    path("tasks/<str:task_id>/jobs", plain.task_jobs(_task_jobs.callback), name="api-task-jobs"),
    # Outside django-ninja too: an upload streams its body (eval/api/datasets.py).
    path("datasets/<str:name>/imports", datasets.import_view, name="api-dataset-imports"),
    *(pattern for pattern in _ninja if pattern not in (_task_jobs, _imports)),
    re_path(r"^(?P<rest>.*)$", plain.unknown),
]
