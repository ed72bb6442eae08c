"""What a dataset is: a task source that uploads may write to (not the one the
sync daemon keeps), and its numbered versions (DatasetVersion)."""

from django.conf import settings

from eval.models import DatasetVersion
from eval.sync.formats import SourceError
from eval.sync.importer import MAX_SOURCE_NAME
from eval.sync.sources import open_source


class UploadRefused(Exception):
    """The upload cannot go ahead at all (``code``: an API error code: conflict, invalid, not_found)."""

    def __init__(self, code, message, field=None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def synced_dataset():
    """The dataset the sync daemon keeps (TASK_SOURCE_NAME, else its source's base name), or None."""
    if settings.TASK_SOURCE_NAME:
        return settings.TASK_SOURCE_NAME.strip()
    if not settings.TASK_SOURCE:
        return None
    try:
        return open_source(settings.TASK_SOURCE).name or None
    except SourceError:
        return None


def is_dataset_name(name):
    return bool(name) and name == name.strip() and len(name) <= MAX_SOURCE_NAME and "\x00" not in name


def check_dataset_name(name):
    """Refuse uploads into a malformed name (not_found, as any malformed path id) or the daemon's dataset."""
    if not is_dataset_name(name):
        raise UploadRefused("not_found", f"not a dataset name (1 to {MAX_SOURCE_NAME} characters, no outer spaces)")
    if name == synced_dataset():
        raise UploadRefused(
            "conflict",
            f"dataset {name!r} is kept by the sync daemon (TASK_SOURCE): change it at its source, not by upload",
        )


def latest_version(dataset):
    """The dataset's newest DatasetVersion, or None (never uploaded to)."""
    if not dataset:
        return None
    return DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()


def record_version(upload, report):
    return DatasetVersion.objects.record(
        upload.dataset,
        created_by=upload.user,
        mode=upload.mode,
        file_name=upload.file_name[:255],
        sha256=upload.sha256,
        added=report.added,
        changed=report.changed,
        missing=report.missing,
        unchanged=report.unchanged,
        outputs=report.outputs,
    )
