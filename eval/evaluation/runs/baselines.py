"""Baselines (DESIGN "Comparison"): one run per dataset that others are
compared with. Marking a run moves its dataset's mark to it, in one
transaction; a unique index (run_one_baseline_per_dataset) keeps two
markings at once from leaving two baselines: the loser tries again.

A run's dataset is its selection's source, else the one source all its
tasks come from; a run over several datasets cannot be a baseline."""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from eval.evaluation.errors import Conflict
from eval.models import Run, Task

ATTEMPTS = 3


def dataset_of(run):
    """The dataset ``run`` ran over, or None when it is not one."""
    source = (run.selection or {}).get("source")
    if source:
        return source
    tasks = Task.objects.filter(jobs__run_id=run.pk).order_by("source")  # no other ordering column in DISTINCT
    sources = list(tasks.values_list("source", flat=True).distinct()[:2])
    return sources[0] if len(sources) == 1 else None


def baseline_of(dataset):
    """The baseline run of ``dataset``, or None."""
    return Run.objects.filter(baseline_of=dataset).first() if dataset else None


def _bumped(**values):
    return {**values, "version": F("version") + 1, "updated_at": timezone.now()}


def mark(run):
    """Make ``run`` its dataset's baseline (the previous one is unmarked). Raises Conflict."""
    if run.kind == Run.Kind.JUDGE:
        raise Conflict("a judge run cannot be a baseline: mark a run whose outputs others are compared with")
    if run.status != Run.Status.DONE:
        raise Conflict(f"the run is {run.status}: only a run that is done can be a baseline")
    dataset = dataset_of(run)
    if dataset is None:
        raise Conflict("the run's tasks come from several datasets: a baseline belongs to one")
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                Run.objects.filter(baseline_of=dataset).exclude(pk=run.pk).update(**_bumped(baseline_of=""))
                Run.objects.filter(pk=run.pk).exclude(baseline_of=dataset).update(**_bumped(baseline_of=dataset))
            break
        except IntegrityError:  # another marking of this dataset committed first
            if attempt == ATTEMPTS - 1:
                raise Conflict("the baseline of this dataset is being changed; try again") from None
    run.refresh_from_db()
    return run
