"""What every export reads: judgements that count, in keyset batches.

Rows are read as ``values()`` dicts in batches of ``BATCH_SIZE`` ordered by
primary key (``WHERE id > last ORDER BY id LIMIT n``: each batch is one
indexed range scan, whatever the table size), so an export holds one batch
in memory, never the whole table.
"""

from django.db.models import Q

from eval.evaluation.reviews.judgements import current
from eval.models import Judgement

BATCH_SIZE = 2000


def keyset(queryset, fields, size=BATCH_SIZE, tuples=False):
    """Lists of ``values(*fields)`` rows of ``queryset`` by ascending id, ``size`` at a time
    (``values_list`` tuples with ``tuples``: then ``fields`` starts with ``id``)."""
    last = None
    while True:
        page = queryset.order_by("id") if last is None else queryset.filter(id__gt=last).order_by("id")
        page = page.values_list(*fields) if tuples else page.values(*fields)
        batch = list(page[:size])
        if batch:
            yield batch
        if len(batch) < size:
            return
        last = batch[-1][0] if tuples else batch[-1]["id"]


def counted(scope=None):
    """Current judgements (neither withdrawn nor superseded) that ``scope`` (a
    JudgementFilter: source, runs...) picks.

    Staleness is left to ``is_stale`` on each row: as a join condition
    (``judgement.prompt_hash = task.prompt_hash``) PostgreSQL estimates it
    at one row and plans a hash join over both whole tables for every batch
    (0.45 s a batch at 30,000 judgements, measured); without it each batch
    is an index range scan on the judgement's primary key."""
    queryset = current(Judgement.objects.all())
    return scope.apply(queryset) if scope is not None else queryset


def is_stale(row):
    """A ``values()`` row with ``prompt_hash`` and ``task__prompt_hash``: judged against an earlier prompt."""
    return row["prompt_hash"] != row["task__prompt_hash"]


def visible():
    """Neither output hidden (hidden jobs are left out of pairs and results, DESIGN)."""
    return Q(job_a__hidden=False) & (Q(job_b__isnull=True) | Q(job_b__hidden=False))


def model_label(provider, model):
    return f"{provider}/{model}" if provider else None


def judged_by(row):
    """A reviewer's username, or ``llm:<provider>/<model>`` for an LLM judge
    (usernames cannot hold a colon)."""
    if row["reviewer__username"]:
        return row["reviewer__username"]
    return f"llm:{model_label(row['judge_provider'], row['judge_model'])}"
