"""The counting behind ``/api/results``: GROUP BY statements over the
judgements that count, so 100,000 judgements come back as a few hundred
rows of counts (never the judgements themselves).

Every statement starts from the same ``counted`` CTE: current judgements
(not withdrawn, not superseded by one that is not), of visible outputs,
non-stale unless asked (the judgement's prompt_hash is the task's now), in
the source and the runs asked for. Each carries the row key of its outputs
(their run, or their provider and model), who judged (a reviewer, or an LLM
judge as ``provider/model``; '' for humans), and for a pairwise verdict the
pair as an unordered item (lo, hi: the two job ids in order) with the
verdict relative to it (``first`` | ``second`` | ``tie`` | ``both_bad``), so
two judges' verdicts on the same outputs compare whichever order each saw.
"""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q

from eval.evaluation import checks
from eval.jobs import states
from eval.models import Judgement, LLMJob, Task

_COUNTED = """
WITH c AS (
  SELECT j.id, j.kind, j.reviewer_id, j.blind, j.verdict, j.rubric_id, j.answers, j.shown_left_id,
         CASE WHEN j.judge_job_id IS NULL THEN '' ELSE j.judge_provider || '/' || j.judge_model END AS judge,
         {key_a}, {key_b},
         {least}(j.job_a_id, j.job_b_id) AS lo, {greatest}(j.job_a_id, j.job_b_id) AS hi,
         CASE WHEN j.verdict IN ('tie', 'both_bad') THEN j.verdict
              WHEN (j.verdict = 'a') = (j.job_a_id < j.job_b_id) THEN 'first' ELSE 'second' END AS label,
         CASE WHEN j.shown_left_id IS NULL OR j.verdict NOT IN ('a', 'b') THEN NULL
              WHEN (j.verdict = 'a') = (j.shown_left_id = j.job_a_id) THEN 1 ELSE 0 END AS left_won
  FROM {judgement} j
  JOIN {task} t ON t.id = j.task_id
  JOIN {job} ja ON ja.id = j.job_a_id
  LEFT JOIN {job} jb ON jb.id = j.job_b_id
  WHERE j.withdrawn_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM {judgement} s WHERE s.supersedes_id = j.id AND s.withdrawn_at IS NULL)
    AND ja.hidden = %s AND (jb.id IS NULL OR jb.hidden = %s){where}
)
"""
_BY_MODEL = ("ja.provider AS a1, ja.model AS a2", "jb.provider AS b1, jb.model AS b2")
_BY_RUN = ("ja.run_id AS a1, '' AS a2", "jb.run_id AS b1, '' AS b2")

PAIRS = """SELECT judge, blind, a1, a2, b1, b2, verdict, COUNT(*) FROM c WHERE kind = 'pairwise'
GROUP BY judge, blind, a1, a2, b1, b2, verdict"""
SIDES = """SELECT reviewer_id, judge, COUNT(*), COUNT(left_won), COALESCE(SUM(left_won), 0) FROM c
GROUP BY reviewer_id, judge"""
HUMAN_PAIRS = """SELECT x.reviewer_id, y.reviewer_id, x.label, y.label, COUNT(*)
FROM c x JOIN c y ON y.lo = x.lo AND y.hi = x.hi AND y.reviewer_id > x.reviewer_id
WHERE x.kind = 'pairwise' AND y.kind = 'pairwise'
GROUP BY x.reviewer_id, y.reviewer_id, x.label, y.label"""
# The human majority of an item: a label more humans gave it than any other.
JUDGE_VS_MAJORITY = """, votes AS (
  SELECT lo, hi, label, COUNT(*) AS n FROM c WHERE kind = 'pairwise' AND reviewer_id IS NOT NULL
  GROUP BY lo, hi, label
), majority AS (
  SELECT v.lo, v.hi, v.label FROM votes v
  WHERE NOT EXISTS (SELECT 1 FROM votes w WHERE w.lo = v.lo AND w.hi = v.hi AND w.label <> v.label AND w.n >= v.n)
)
SELECT c.judge, c.label, m.label, COUNT(*) FROM c JOIN majority m ON m.lo = c.lo AND m.hi = c.hi
WHERE c.kind = 'pairwise' AND c.judge <> ''
GROUP BY c.judge, c.label, m.label"""
# Swap: the same judge on the same outputs shown the other way round.
SWAPS = """SELECT x.judge, COUNT(*), COALESCE(SUM(CASE WHEN x.label = y.label THEN 1 ELSE 0 END), 0)
FROM c x JOIN c y ON y.lo = x.lo AND y.hi = x.hi AND y.judge = x.judge AND y.id > x.id
  AND y.shown_left_id <> x.shown_left_id
WHERE x.kind = 'pairwise' AND y.kind = 'pairwise' AND x.judge <> ''
GROUP BY x.judge"""


@dataclass(frozen=True)
class Scope:
    """What counts: the source, the runs (rows per run) or None (rows per model), stale ones too."""

    source: str | None = None
    runs: tuple[int, ...] | None = None
    include_stale: bool = False

    def counted(self):
        """The ``counted`` CTE and its parameters."""
        postgres = connection.vendor == "postgresql"
        key_a, key_b = _BY_RUN if self.runs is not None else _BY_MODEL
        where, params = [], [False, False]
        if not self.include_stale:
            where.append("j.prompt_hash = t.prompt_hash")
        if self.source is not None:
            where.append("t.source = %s")
            params.append(self.source)
        if self.runs is not None:
            marks = ", ".join(["%s"] * len(self.runs))
            where.append(f"ja.run_id IN ({marks}) AND (jb.id IS NULL OR jb.run_id IN ({marks}))")
            params += [*self.runs, *self.runs]
        sql = _COUNTED.format(
            key_a=key_a,
            key_b=key_b,
            least="LEAST" if postgres else "MIN",
            greatest="GREATEST" if postgres else "MAX",
            judgement=Judgement._meta.db_table,
            task=Task._meta.db_table,
            job=LLMJob._meta.db_table,
            where="".join(f"\n    AND {condition}" for condition in where),
        )
        return sql, params


def fetch(scope, statement, params=()):
    cte, cte_params = scope.counted()
    with connection.cursor() as cursor:
        cursor.execute(cte + statement, [*cte_params, *params])
        return cursor.fetchall()


def _answer(key):
    """SQL of a rating answer as a number, and its parameter."""
    if connection.vendor == "postgresql":
        return "CAST(answers ->> %s AS double precision)", key
    return "CAST(json_extract(answers, %s) AS REAL)", f"$.{key}"


def score_sums(scope, rating_keys):
    """Score judgements per (judge, blind, row): their count, then for each of
    ``rating_keys`` ({key: rubric ids where it is a rating}) the count, sum and
    sum of squares of its answers."""
    columns, params = [], []
    for key, rubric_ids in rating_keys.items():
        value, param = _answer(key)
        marks = ", ".join(["%s"] * len(rubric_ids))
        guarded = f"CASE WHEN rubric_id IN ({marks}) THEN {value} END"
        columns += [f"COUNT({guarded})", f"SUM({guarded})", f"SUM({guarded} * {guarded})"]
        params += [*rubric_ids, param] * 4  # the guarded value appears four times
    statement = f"""SELECT judge, blind, a1, a2, COUNT(*){"".join(", " + column for column in columns)}
FROM c WHERE kind = 'score' GROUP BY judge, blind, a1, a2"""
    return fetch(scope, statement, params)


def check_counts(scope):
    """[(row key, check type, passed, n)]: the automatic checks of the outputs
    the rows stand for (succeeded, visible generate jobs of a run)."""
    jobs = LLMJob.objects.filter(run__isnull=False, kind=LLMJob.Kind.GENERATE, status=states.SUCCEEDED, hidden=False)
    if scope.source is not None:
        jobs = jobs.filter(task__source=scope.source)
    keys = ("run_id",) if scope.runs is not None else ("provider", "model")
    if scope.runs is not None:
        jobs = jobs.filter(run_id__in=scope.runs)
    aggregates = {}
    for kind in checks.TYPES:
        aggregates[f"{kind}_n"] = Count("pk", filter=Q(check_results__has_key=kind))
        aggregates[f"{kind}_passed"] = Count("pk", filter=Q(**{f"check_results__{kind}__exact": True}))
    result = []
    for row in jobs.values(*keys).annotate(**aggregates).order_by():
        key = (row["run_id"], "") if scope.runs is not None else (row["provider"], row["model"])
        result += [(key, kind, row[f"{kind}_passed"], row[f"{kind}_n"]) for kind in checks.TYPES if row[f"{kind}_n"]]
    return result
