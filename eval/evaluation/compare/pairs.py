"""Per task both runs ran, the job of each that counts: the latest that ended
(succeeded or failed; cancelled is not an outcome of the model), not hidden,
not a judge's. One statement joins them in the database: 10,000 tasks are
10,000 small rows (no outputs), the window function numbering each run's
jobs of a task newest first (``llmjob_run_status_idx`` finds them).

A task whose own content (``prompt_hash``) differs between the two jobs is
left out of the comparison and counted (``prompt_changed``)."""

import json
from dataclasses import dataclass

from django.db import connection

from eval.jobs import states
from eval.models import LLMJob

_ENDED = (states.SUCCEEDED.value, states.FAILED.value)

# One pass, no self-join: the latest ended job of each run per task (the
# window), then one row per task with each run's columns side by side (the
# pivot: MAX over the one row of each run). A join of the two halves was
# planned as a nested loop when the statistics did not know a new run's rows
# yet (estimated 1 row each): 10,000 x 10,000 comparisons, 95 s. Grouping
# cannot go quadratic whatever the estimates. No timestamps: loading 40,000
# of them cost more than the statement (durations are read for a page only).
_PAIRS_SQL = """
WITH ranked AS (
  SELECT j.id, j.run_id, j.task_id, j.status, j.output_hash, j.prompt_hash, j.check_results,
         j.input_tokens, j.output_tokens, j.cost_usd,
         ROW_NUMBER() OVER (PARTITION BY j.run_id, j.task_id ORDER BY j.finished_at DESC, j.created_at DESC) AS n
  FROM eval_llmjob j
  WHERE j.run_id IN (%(a)s, %(b)s) AND j.status IN (%(succeeded)s, %(failed)s) AND j.kind <> 'judge'
    AND j.hidden = %(hidden)s
)
SELECT task_id,
       MAX(CASE WHEN run_id = %(a)s THEN CAST(id AS TEXT) END),
       MAX(CASE WHEN run_id = %(a)s THEN status END),
       MAX(CASE WHEN run_id = %(a)s THEN output_hash END),
       MAX(CASE WHEN run_id = %(a)s THEN prompt_hash END),
       MAX(CASE WHEN run_id = %(a)s THEN CAST(check_results AS TEXT) END),
       MAX(CASE WHEN run_id = %(a)s THEN input_tokens END),
       MAX(CASE WHEN run_id = %(a)s THEN output_tokens END),
       MAX(CASE WHEN run_id = %(a)s THEN cost_usd END),
       MAX(CASE WHEN run_id = %(b)s THEN CAST(id AS TEXT) END),
       MAX(CASE WHEN run_id = %(b)s THEN status END),
       MAX(CASE WHEN run_id = %(b)s THEN output_hash END),
       MAX(CASE WHEN run_id = %(b)s THEN prompt_hash END),
       MAX(CASE WHEN run_id = %(b)s THEN CAST(check_results AS TEXT) END),
       MAX(CASE WHEN run_id = %(b)s THEN input_tokens END),
       MAX(CASE WHEN run_id = %(b)s THEN output_tokens END),
       MAX(CASE WHEN run_id = %(b)s THEN cost_usd END)
FROM ranked WHERE n = 1
GROUP BY task_id
HAVING SUM(CASE WHEN run_id = %(a)s THEN 1 ELSE 0 END) > 0 AND SUM(CASE WHEN run_id = %(b)s THEN 1 ELSE 0 END) > 0
ORDER BY task_id
"""

_TASKS_SQL = """
SELECT run_id, COUNT(DISTINCT task_id) FROM eval_llmjob
WHERE run_id IN (%s, %s) AND status IN (%s, %s) AND kind <> 'judge' AND hidden = %s
GROUP BY run_id
"""


# Plain (not frozen) slotted classes: a frozen dataclass's __init__ goes through
# object.__setattr__ per field, which made building 20,000 sides 3x slower.
@dataclass(slots=True)
class Side:
    job_id: str
    status: str
    output_hash: str
    prompt_hash: str
    check_results: dict
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float  # summed for display: a float's 15 digits hold any run's total

    @property
    def failed(self):
        return self.status == states.FAILED

    def check(self, name):
        """This job's result of check ``name``: a failed job fails every check;
        None when the check does not apply to the task (no reference)."""
        return False if self.failed else self.check_results.get(name)


@dataclass(slots=True)
class Pair:
    task_id: int
    a: Side
    b: Side

    @property
    def changed_output(self):
        return self.a.output_hash != self.b.output_hash or self.a.status != self.b.status

    @property
    def prompt_changed(self):
        return bool(self.a.prompt_hash and self.b.prompt_hash and self.a.prompt_hash != self.b.prompt_hash)


def _json(value):
    if isinstance(value, str):
        value = json.loads(value) if value and value != "{}" else {}
    return value if isinstance(value, dict) else {}


def _side(values):
    job_id, status, output_hash, prompt_hash, checks, tokens_in, tokens_out, cost = values
    return Side(
        job_id=str(job_id) if not isinstance(job_id, str) or len(job_id) != 32 else _dashed(job_id),
        status=status,
        output_hash=output_hash or "",
        prompt_hash=prompt_hash or "",
        check_results=_json(checks),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=float(cost or 0),
    )


def _dashed(hex32):
    """SQLite keeps a UUID as 32 hex digits: the API's form has dashes."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def pairs(run_a, run_b):
    """[Pair] of every task both runs ran, ordered by task id."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PAIRS_SQL, {"a": run_a, "b": run_b, "succeeded": _ENDED[0], "failed": _ENDED[1], "hidden": False}
        )
        rows = cursor.fetchall()
    return [Pair(row[0], _side(row[1:9]), _side(row[9:17])) for row in rows]


def tasks_ran(run_a, run_b):
    """(tasks A ran, tasks B ran): distinct tasks with an ended job in each run."""
    with connection.cursor() as cursor:
        cursor.execute(_TASKS_SQL, [run_a, run_b, *_ENDED, False])
        found = dict(cursor.fetchall())
    return found.get(run_a, 0), found.get(run_b, 0)


def durations(job_ids):
    """{job id: seconds from start to end, or None} of a page's jobs."""
    rows = LLMJob.objects.filter(pk__in=job_ids).values_list("id", "started_at", "finished_at")
    return {
        str(job_id): (finished - started).total_seconds() if started and finished else None
        for job_id, started, finished in rows
    }
