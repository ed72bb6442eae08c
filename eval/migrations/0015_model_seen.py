"""Who saw which model: per output (ModelSeen) instead of per task (JobsSeen).

The rows carried over: a task's jobs seen count as every job of that task
seen, and every output a person has judged counts as seen with its model
(a pair's verdict reveals both). Pairwise verdicts stored ``blind`` although
their author had judged one of the two outputs before (the reveal) are set
to ``blind: false``: that is what they were.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q

BATCH = 1000


def _insert(ModelSeen, rows):
    """Insert (user id, job id) pairs in batches, skipping those already there."""
    batch = []
    for user_id, job_id in rows:
        batch.append(ModelSeen(user_id=user_id, job_id=job_id))
        if len(batch) >= BATCH:
            ModelSeen.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        ModelSeen.objects.bulk_create(batch, ignore_conflicts=True)


def carry_over(apps, schema_editor):
    JobsSeen = apps.get_model("eval", "JobsSeen")
    ModelSeen = apps.get_model("eval", "ModelSeen")
    LLMJob = apps.get_model("eval", "LLMJob")
    Judgement = apps.get_model("eval", "Judgement")
    _insert(
        ModelSeen,
        (
            (user_id, job_id)
            for user_id, task_id in JobsSeen.objects.values_list("user_id", "task_id").iterator()
            for job_id in LLMJob.objects.filter(task_id=task_id).values_list("id", flat=True)
        ),
    )
    judged = Judgement.objects.filter(reviewer__isnull=False).values_list("reviewer_id", "job_a_id", "job_b_id")
    _insert(
        ModelSeen,
        ((r, job) for r, a, b in judged.iterator() for job in (a, b) if job is not None),
    )
    revealed_before = Judgement.objects.filter(reviewer=OuterRef("reviewer"), pk__lt=OuterRef("pk")).filter(
        Q(job_a=OuterRef("job_a")) | Q(job_b=OuterRef("job_a")) | Q(job_a=OuterRef("job_b")) | Q(job_b=OuterRef("job_b"))
    )
    Judgement.objects.filter(kind="pairwise", reviewer__isnull=False, blind=True).filter(
        Exists(revealed_before)
    ).update(blind=False)


class Migration(migrations.Migration):
    dependencies = [
        ("eval", "0014_prompt_templates"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ModelSeen",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("first_seen_at", models.DateTimeField(auto_now_add=True)),
                (
                    "job",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="eval.llmjob"),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={"verbose_name_plural": "models seen"},
        ),
        migrations.AddConstraint(
            model_name="modelseen",
            constraint=models.UniqueConstraint(fields=("user", "job"), name="model_seen_user_job_uniq"),
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.DeleteModel(name="JobsSeen"),
    ]
