"""Per task both runs ran, the job of each that counts: the latest that ended
(succeeded or failed; cancelled is not an outcome of the model), not hidden,
not a judge's. One statement joins them in the database: 10,000 tasks are
10,000 small rows (no outputs), the window function numbering each run's
jobs of a task newest first (``llmjob_run_status_idx`` finds them).

A task whose own content (``prompt_hash``) differs between the two jobs is
left out of the comparison and counted (``prompt_changed``)."""

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
  SELECT j.id, j.run_id, j.task_id, j.status, j.output_hash, j.prompt_hash, j.input_tokens, j.output_tokens,
         j.cost_usd{checks},
         ROW_NUMBER() OVER (PARTITION BY j.run_id, j.task_id ORDER BY j.finished_at DESC, j.created_at DESC) AS n
  FROM eval_llmjob j
  WHERE j.run_id IN (%(a)s, %(b)s) AND j.status IN (%(succeeded)s, %(failed)s) AND j.kind <> 'judge'
    AND j.hidden = %(hidden)s
)
SELECT task_id, {side_a}, {side_b}
FROM ranked WHERE n = 1
GROUP BY task_id
HAVING SUM(CASE WHEN run_id = %(a)s THEN 1 ELSE 0 END) > 0 AND SUM(CASE WHEN run_id = %(b)s THEN 1 ELSE 0 END) > 0
ORDER BY task_id
"""
_SIDE_COLUMNS = (
    "CAST(id AS TEXT)",
    "status",
    "output_hash",
    "prompt_hash",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
# A check's result read in SQL (a JSON boolean, or NULL when the check did not
# apply): decoding 20,000 JSON documents in Python cost more than the statement.
_CHECK_SQL = {
    "postgresql": "(j.check_results ->> %({param})s)",  # 'true' / 'false'
    "sqlite": "json_extract(j.check_results, '$.' || %({param})s)",  # 1 / 0
}
_BOOLEAN = {"true": True, "false": False, 1: True, 0: False}  # 1 and 0 also match True and False


def _pairs_sql(check_names):
    extract = _CHECK_SQL.get(connection.vendor, _CHECK_SQL["sqlite"])
    checks = "".join(f", {extract.format(param=f'c{i}')} AS c{i}" for i in range(len(check_names)))
    columns = [*_SIDE_COLUMNS, *(f"c{i}" for i in range(len(check_names)))]

    def side(run):
        return ", ".join(f"MAX(CASE WHEN run_id = %({run})s THEN {column} END)" for column in columns)

    return _PAIRS_SQL.format(checks=checks, side_a=side("a"), side_b=side("b"))


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
    check_results: dict  # {check: passed} of the checks asked for that applied
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None  # summed for display: a float's 15 digits hold any run's total

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


def _side(values, check_names):
    job_id, status, output_hash, prompt_hash, tokens_in, tokens_out, cost, *checks = values
    return Side(
        job_id=str(job_id) if not isinstance(job_id, str) or len(job_id) != 32 else _dashed(job_id),
        status=status,
        output_hash=output_hash or "",
        prompt_hash=prompt_hash or "",
        check_results={name: _BOOLEAN[v] for name, v in zip(check_names, checks, strict=True) if v is not None},
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=None if cost is None else float(cost),
    )


def _dashed(hex32):
    """SQLite keeps a UUID as 32 hex digits: the API's form has dashes."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def pairs(run_a, run_b, check_names=()):
    """[Pair] of every task both runs ran, ordered by task id, with the results of ``check_names``."""
    params = {"a": run_a, "b": run_b, "succeeded": _ENDED[0], "failed": _ENDED[1], "hidden": False}
    params.update({f"c{i}": name for i, name in enumerate(check_names)})
    with connection.cursor() as cursor:
        cursor.execute(_pairs_sql(check_names), params)
        rows = cursor.fetchall()
    width = len(_SIDE_COLUMNS) + len(check_names)
    return [Pair(row[0], _side(row[1 : 1 + width], check_names), _side(row[1 + width :], check_names)) for row in rows]


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
