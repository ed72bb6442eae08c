"""Exports of tasks, judgements and preference pairs (DESIGN "Evaluation":
``manage.py export_reviews`` and ``GET /api/exports/<what>.<jsonl|csv>``).

``Export(what, fmt, source=..., run=..., runs=..., include_stale=...)`` is an iterable of text
chunks (the CSV header, then one chunk per batch of rows), produced while it
is read: memory holds one batch, whatever the export's size. Row shapes:
exports/tasks.py and exports/judgements.py; formats: exports/formats.py.
"""

from django.utils import timezone

from eval.evaluation.errors import NotFound
from eval.evaluation.exports.formats import FORMATS
from eval.evaluation.exports.judgements import JUDGEMENT_COLUMNS, JUDGEMENT_RAW, PAIR_COLUMNS, judgement_rows, pair_rows
from eval.evaluation.exports.selection import BATCH_SIZE
from eval.evaluation.exports.tasks import TASK_COLUMNS, TASK_RAW, task_rows
from eval.evaluation.reviews import judgement_filters

# what -> (its columns, in order; those holding JSON text; its batches of rows, tuples in column order)
KINDS = {
    "tasks": (TASK_COLUMNS, TASK_RAW, task_rows),
    "judgements": (JUDGEMENT_COLUMNS, JUDGEMENT_RAW, judgement_rows),
    "pairs": (PAIR_COLUMNS, (), pair_rows),
}
MAX_SOURCE = judgement_filters.MAX_SOURCE


class Export:
    """``run``: one run id (the judgements it is in; tasks it has a job on) or two (the
    verdicts between them); ``runs``: the results' scope (every output judged is from
    one of them). The rule: eval/evaluation/reviews/judgement_filters.py."""

    def __init__(self, what, fmt, *, source=None, include_stale=False, run=None, runs=None, batch_size=BATCH_SIZE):
        if what not in KINDS:
            raise NotFound(f"no export of {what!r} (one of: {', '.join(KINDS)})")
        if fmt not in FORMATS:
            raise NotFound(f"no {fmt!r} format (one of: {', '.join(FORMATS)})")
        self.scope = judgement_filters.build(source=source, run=run, runs=runs)
        self.what, self.source, self.include_stale, self.batch_size = what, source or None, include_stale, batch_size
        columns, raw, self._rows = KINDS[what]
        self.format = FORMATS[fmt](columns, raw)
        self.rows = 0  # written so far

    @property
    def content_type(self):
        return self.format.content_type

    def filename(self, now=None):
        stamp = (now or timezone.now()).strftime("%Y%m%d-%H%M%S")
        runs = "-".join(f"run{run_id}" for run_id in self.scope.run or self.scope.runs)
        return f"{self.what}-{runs + '-' if runs else ''}{stamp}.{self.format.extension}"

    def __iter__(self):
        header = self.format.header()
        if header:
            yield header
        for batch in self._rows(self.scope, self.include_stale, self.batch_size):
            self.rows += len(batch)
            yield self.format.batch(batch)
