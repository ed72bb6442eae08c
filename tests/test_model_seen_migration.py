"""Migration 0015: who saw what, from per task (JobsSeen) to per output
(ModelSeen), and pairwise verdicts stored blind after a reveal corrected."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from eval.models import Judgement, ModelSeen

BEFORE = [("eval", "0014_prompt_templates")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_it_carries_views_over_and_unflags_verdicts_made_after_a_reveal():
    apps = migrate(BEFORE)
    User = apps.get_model("auth", "User")
    Task = apps.get_model("eval", "Task")
    LLMJob = apps.get_model("eval", "LLMJob")
    Rubric = apps.get_model("eval", "Rubric")
    Judgement_ = apps.get_model("eval", "Judgement")
    JobsSeen = apps.get_model("eval", "JobsSeen")

    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    rubric = Rubric.objects.create(name="migration-test")
    seen_task, judged_task = (Task.objects.create(source="m", external_id=n, title=n, prompt=n) for n in "ab")

    def job(task, model):
        return LLMJob.objects.create(
            task=task, provider="echo", model=model, status="succeeded", available_at=timezone.now()
        )

    s1, s2 = job(seen_task, "echo"), job(seen_task, "echo-brief")
    a, b, c = job(judged_task, "echo"), job(judged_task, "echo-brief"), job(judged_task, "echo-reverse")
    JobsSeen.objects.create(user=alice, task=seen_task)

    def pairwise(user, x, y):
        return Judgement_.objects.create(
            kind="pairwise", task=judged_task, reviewer=user, job_a=x, job_b=y, rubric=rubric, verdict="a", blind=True
        )

    first = pairwise(bob, a, b)  # blind: nothing revealed before it
    after_reveal = pairwise(bob, a, c)  # a's model was revealed by the first verdict
    others = pairwise(alice, b, c)  # alice had judged nothing there

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    def seen_by(user_id):
        return set(ModelSeen.objects.filter(user_id=user_id).values_list("job_id", flat=True))

    assert seen_by(alice.pk) == {s1.pk, s2.pk, b.pk, c.pk}  # the seen task's jobs, and what she judged
    assert seen_by(bob.pk) == {a.pk, b.pk, c.pk}
    blind = dict(Judgement.objects.values_list("pk", "blind"))
    assert blind == {first.pk: True, after_reveal.pk: False, others.pk: True}
