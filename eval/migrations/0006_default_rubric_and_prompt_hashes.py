"""The built-in default rubric, and prompt hashes for the tasks and jobs that
existed before judgements pinned them (a job gets its task's current hash)."""

import hashlib

from django.db import migrations
from django.db.models import OuterRef, Subquery

DEFAULT_QUESTIONS = [
    {"key": "quality", "label": "Overall quality", "type": "rating", "scale": [1, 5], "required": True},
    {"key": "comment", "label": "Comment", "type": "text", "required": False},
]
DEFAULT_GUIDELINES = (
    "Rate how well the output answers the prompt: 5 = correct, complete and clear; "
    "3 = usable with fixes; 1 = wrong or unusable. Compare with the reference when there is one."
)


def fingerprint(prompt, reference):
    # Frozen copy of eval.models.tasks.prompt_fingerprint (migrations must not follow code changes).
    prompt, reference = prompt or "", reference or ""
    return hashlib.sha256(f"{len(prompt)}:{prompt}{len(reference)}:{reference}".encode()).hexdigest()


def forwards(apps, schema_editor):
    Rubric = apps.get_model("eval", "Rubric")
    Task = apps.get_model("eval", "Task")
    LLMJob = apps.get_model("eval", "LLMJob")
    Rubric.objects.get_or_create(
        name="default", version=1, defaults={"guidelines": DEFAULT_GUIDELINES, "questions": DEFAULT_QUESTIONS}
    )
    tasks = Task.objects.filter(prompt_hash="").only("id", "prompt", "reference").order_by("id")
    batch = []
    for task in tasks.iterator(chunk_size=2000):
        task.prompt_hash = fingerprint(task.prompt, task.reference)
        batch.append(task)
        if len(batch) >= 2000:
            Task.objects.bulk_update(batch, ["prompt_hash"])
            batch = []
    Task.objects.bulk_update(batch, ["prompt_hash"])
    current = Task.objects.filter(pk=OuterRef("task_id")).values("prompt_hash")[:1]
    LLMJob.objects.filter(prompt_hash="").update(prompt_hash=Subquery(current))


class Migration(migrations.Migration):
    dependencies = [("eval", "0005_evaluation")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
