"""A reviewer's unsaved review form, kept on the server (another device sees it)."""

import json

from eval.evaluation.errors import InvalidInput
from eval.models import ReviewDraft

# Room for a whole unsaved review: notes of Review.MAX_NOTES_CHARS characters of
# up to 4 UTF-8 bytes each, plus the score answers (the API takes 1 MB bodies).
MAX_DRAFT_BYTES = 512 * 1024


def get(user, task):
    return ReviewDraft.objects.filter(user=user, task=task).first()


def put(user, task, data):
    size = len(json.dumps(data, separators=(",", ":")).encode())
    if size > MAX_DRAFT_BYTES:
        raise InvalidInput(f"a draft is at most {MAX_DRAFT_BYTES // 1024} KB (this one is {size} bytes)")
    draft, _ = ReviewDraft.objects.update_or_create(user=user, task=task, defaults={"data": data})
    return draft


def discard(user, task):
    ReviewDraft.objects.filter(user=user, task=task).delete()


def draft_json(task_id, draft):
    return {
        "task": task_id,
        "data": draft.data if draft else None,
        "updated_at": draft.updated_at.isoformat() if draft else None,
    }
