"""Rows of the ``tasks`` export: one per task, with what people made of it.

Each row: the task (``id, source, external_id, title, status, prompt,
reference, metadata, messages`` (a conversation, or null)) and a summary of its current human judgements
(withdrawn and superseded ones never; stale ones only with
``include_stale``; none on a hidden output):

- ``human_judgements``, ``judge_judgements``: how many count;
- ``stale_judgements``: current human judgements made against an earlier
  prompt or reference (counted whatever ``include_stale`` says: "needs
  re-review");
- ``scores``: per output model (``provider/model``), the number of score
  judgements ``n`` and the mean of each numeric answer;
- ``pairwise``: per model, its ``wins``, ``losses``, ``ties`` and
  ``both_bad`` in pairwise verdicts;
- ``reviews``: each reviewer's overall review (``reviewer``, ``rating``,
  ``preferred_model``, ``notes``), and ``mean_rating`` over them.

Four indexed range queries per batch of tasks: the tasks, their outputs' models,
their judgements, their reviews.
"""

from collections import defaultdict

from django.db.models import TextField
from django.db.models.functions import Cast

from eval.evaluation.exports.selection import BATCH_SIZE, keyset, model_label
from eval.models import Judgement, LLMJob, Review, Task

TASK_COLUMNS = (
    "id",
    "source",
    "external_id",
    "title",
    "status",
    "prompt",
    "reference",
    "metadata",
    "messages",
    "human_judgements",
    "judge_judgements",
    "stale_judgements",
    "scores",
    "pairwise",
    "reviews",
    "mean_rating",
)
# Read as tuples, ``metadata`` and ``messages`` as the database's JSON text (written as
# is: never decoded and encoded again); the first nine are the row's first nine columns.
_TASK_FIELDS = (
    "id",
    "source",
    "external_id",
    "title",
    "status",
    "prompt",
    "reference",
    "metadata_text",
    "messages_text",
    "prompt_hash",
)
TASK_RAW = ("metadata", "messages")  # columns holding JSON text
_PROMPT_HASH = 9
_TASK_PART = 9  # the task's own columns in a row
_JUDGEMENT_FIELDS = (
    "id",
    "supersedes_id",
    "task_id",
    "kind",
    "verdict",
    "answers",
    "reviewer_id",
    "prompt_hash",
    "job_a_id",
    "job_b_id",
)
_REVIEW_FIELDS = ("task_id", "reviewer__username", "rating", "preferred_job__provider", "preferred_job__model", "notes")
# verdict -> (job_a's tally, job_b's tally)
_OUTCOMES = {"a": ("wins", "losses"), "b": ("losses", "wins"), "tie": ("ties", "ties"), "both_bad": ("both_bad",) * 2}


class _Summary:
    """One task's current human judgements, added up."""

    def __init__(self):
        self.human = self.judge = self.stale = 0
        self.score_sums = defaultdict(lambda: defaultdict(float))
        self.score_counts = defaultdict(int)
        self.pairwise = {}

    def add(self, row, models, stale, include_stale):
        human = row["reviewer_id"] is not None
        self.stale += human and stale
        if stale and not include_stale:
            return
        if not human:
            self.judge += 1
            return
        self.human += 1
        if row["kind"] == Judgement.Kind.SCORE:
            self._score(models[0], row["answers"])
            return
        for model, outcome in zip(models, _OUTCOMES[row["verdict"]], strict=True):
            tally = self.pairwise.setdefault(model, {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0})
            tally[outcome] += 1

    def _score(self, model, answers):
        self.score_counts[model] += 1
        for key, value in (answers or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.score_sums[model][key] += value

    def scores(self):
        return {
            model: {"n": n, **{key: round(total / n, 4) for key, total in self.score_sums[model].items()}}
            for model, n in self.score_counts.items()
        }


def _in_batch(queryset, tasks, source):
    """``queryset`` (judgements, jobs) limited to the tasks of a batch: a range of task ids."""
    queryset = queryset.filter(task_id__gte=tasks[0][0], task_id__lte=tasks[-1][0])
    return queryset.filter(task__source=source) if source else queryset


def _models(tasks, source):
    """{job id: its ``provider/model``} of the batch's visible outputs.

    A range scan of llmjob_task_idx rather than a join from each judgement:
    the join's planner picks a hash join over the whole job table (55 ms a
    batch at 30,000 jobs, measured), this stays on the batch's jobs."""
    jobs = _in_batch(LLMJob.objects.filter(kind=LLMJob.Kind.GENERATE, hidden=False), tasks, source)
    rows = jobs.order_by().values_list("id", "provider", "model")
    return {job_id: model_label(provider, model) for job_id, provider, model in rows}


def _current(tasks, source):
    """The batch's current judgements: ``judgements.current()`` worked out in
    the batch, which holds every judgement that could supersede another (the
    same judge on the same jobs: the same task). As SQL (NOT EXISTS) it was
    planned as a hash anti join over the whole judgement table for every
    batch (40 ms a batch at 30,000 judgements, measured)."""
    rows = _in_batch(Judgement.objects.filter(withdrawn_at__isnull=True), tasks, source)
    rows = list(rows.order_by().values(*_JUDGEMENT_FIELDS))
    superseded = {row["supersedes_id"] for row in rows}
    return [row for row in rows if row["id"] not in superseded]


def _summaries(tasks, source, include_stale):
    """{task id: _Summary} of the batch's current judgements of visible outputs."""
    hashes = {task[0]: task[_PROMPT_HASH] for task in tasks}
    models = _models(tasks, source)
    summaries = defaultdict(_Summary)
    for row in _current(tasks, source):
        jobs = [row["job_a_id"]] + ([row["job_b_id"]] if row["job_b_id"] else [])
        if row["task_id"] not in hashes or any(job not in models for job in jobs):
            continue  # another source's task in the id range, or a hidden output
        stale = row["prompt_hash"] != hashes[row["task_id"]]
        summaries[row["task_id"]].add(row, [models[job] for job in jobs], stale, include_stale)
    return summaries


def _reviews(tasks, source):
    reviews = defaultdict(list)
    rows = _in_batch(Review.objects.all(), tasks, source).order_by("task_id", "id").values(*_REVIEW_FIELDS)
    for row in rows:
        reviews[row["task_id"]].append(
            {
                "reviewer": row["reviewer__username"],
                "rating": row["rating"],
                "preferred_model": model_label(row["preferred_job__provider"], row["preferred_job__model"]),
                "notes": row["notes"],
            }
        )
    return reviews


def _mean_rating(reviews):
    ratings = [review["rating"] for review in reviews if review["rating"] is not None]
    return round(sum(ratings) / len(ratings), 4) if ratings else None


def task_row(task, summary, reviews):
    """A task's row: a tuple in TASK_COLUMNS order."""
    if summary is None:
        return (*task[:_TASK_PART], 0, 0, 0, {}, {}, reviews, _mean_rating(reviews) if reviews else None)
    return (
        *task[:_TASK_PART],
        summary.human,
        summary.judge,
        summary.stale,
        summary.scores(),
        summary.pairwise,
        reviews,
        _mean_rating(reviews),
    )


def task_rows(scope=None, include_stale=False, batch_size=BATCH_SIZE):
    """With ``scope`` (a JudgementFilter): its source's tasks, and with runs the tasks they
    have a job on; each summary holds all of the task's current judgements."""
    tasks = scope.tasks(Task.objects.all()) if scope is not None else Task.objects.all()
    source = scope.source if scope is not None else None
    tasks = tasks.annotate(metadata_text=Cast("metadata", TextField()), messages_text=Cast("messages", TextField()))
    for batch in keyset(tasks, _TASK_FIELDS, batch_size, tuples=True):
        summaries, reviews = _summaries(batch, source, include_stale), _reviews(batch, source)
        yield [task_row(task, summaries.get(task[0]), reviews.get(task[0], [])) for task in batch]
