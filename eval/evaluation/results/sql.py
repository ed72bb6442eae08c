"""The counting behind ``/api/results``: GROUP BY statements over the
judgements that count, so 100,000 judgements come back as a few hundred
rows of counts (never the judgements themselves).

Every statement reads the same ``results_counted`` temporary table: current judgements
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

from django.db import connection, transaction
from django.db.models import Count, Q

from eval.evaluation.runs import output_checks as checks
from eval.models import Judgement, LLMJob, Run, Task

TABLE = "results_counted"
_COUNTED = """
SELECT j.id, j.kind{c} AS kind, j.reviewer_id, j.blind, j.verdict{c} AS verdict, j.shown_left_id,
       (CASE WHEN j.judge_job_id IS NULL THEN '' ELSE j.judge_provider || '/' || j.judge_model END){c} AS judge,
       {key_a}, {key_b},
       {least}(j.job_a_id, j.job_b_id) AS lo, {greatest}(j.job_a_id, j.job_b_id) AS hi,
       (CASE WHEN j.verdict IN ('tie', 'both_bad') THEN j.verdict
             WHEN (j.verdict = 'a') = (j.job_a_id < j.job_b_id) THEN 'first' ELSE 'second' END){c} AS label,
       CASE WHEN j.shown_left_id IS NULL OR j.verdict NOT IN ('a', 'b') THEN NULL
            WHEN (j.verdict = 'a') = (j.shown_left_id = j.job_a_id) THEN 1 ELSE 0 END AS left_won{answers}
FROM {judgement} j
JOIN {task} t ON t.id = j.task_id
JOIN {job} ja ON ja.id = j.job_a_id
LEFT JOIN {job} jb ON jb.id = j.job_b_id
WHERE j.withdrawn_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {judgement} s WHERE s.supersedes_id = j.id AND s.withdrawn_at IS NULL)
  AND ja.hidden = %s AND (jb.id IS NULL OR jb.hidden = %s){where}
"""
_BY_MODEL = ("ja.provider{c} AS a1, ja.model{c} AS a2", "jb.provider{c} AS b1, jb.model{c} AS b2")
_BY_RUN = ("ja.run_id AS a1, '' AS a2", "jb.run_id AS b1, '' AS b2")
# Rows per model and prompt template version: the model and the template id ('' for none) after a '#'.
_TEMPLATE = "{t}.model || '#' || COALESCE(CAST({t}.template_id AS TEXT), '')"
_BY_TEMPLATE = (
    f"ja.provider{{c}} AS a1, ({_TEMPLATE.format(t='ja')}){{c}} AS a2",
    f"jb.provider{{c}} AS b1, ({_TEMPLATE.format(t='jb')}){{c}} AS b2",
)
TEMPLATE_MARK = "#"

PAIRS = """SELECT judge, blind, a1, a2, b1, b2, verdict, COUNT(*) FROM results_counted WHERE kind = 'pairwise'
GROUP BY judge, blind, a1, a2, b1, b2, verdict"""
SIDES = """SELECT reviewer_id, judge, COUNT(*), COUNT(left_won), COALESCE(SUM(left_won), 0) FROM results_counted
GROUP BY reviewer_id, judge"""
HUMAN_PAIRS = """SELECT x.reviewer_id, y.reviewer_id, x.label, y.label, COUNT(*)
FROM results_counted x JOIN results_counted y ON y.lo = x.lo AND y.hi = x.hi AND y.reviewer_id > x.reviewer_id
WHERE x.kind = 'pairwise' AND y.kind = 'pairwise'
GROUP BY x.reviewer_id, y.reviewer_id, x.label, y.label"""
# The human majority of an item: a label more humans gave it than any other.
# No join: each judge verdict sees its item's human votes through a window, so
# the plan is one sort whatever the planner guesses about the temporary table.
_VOTES = "SUM(CASE WHEN reviewer_id IS NOT NULL AND label = '{0}' THEN 1 ELSE 0 END) OVER (PARTITION BY lo, hi) AS {0}"
JUDGE_VS_MAJORITY = """SELECT judge, label, CASE {majority} END AS majority, COUNT(*) FROM (
  SELECT judge, kind, label, {votes} FROM results_counted
  WHERE kind = 'pairwise' AND EXISTS (
    SELECT 1 FROM results_counted j WHERE j.lo = results_counted.lo AND j.hi = results_counted.hi AND j.judge <> ''
  )
) items
WHERE judge <> '' AND CASE {majority} END IS NOT NULL
GROUP BY judge, label, CASE {majority} END"""
LABELS = ("first", "second", "tie", "both_bad")
# Swap: the same judge on the same outputs shown the other way round. Per item
# and judge, verdicts seen with lo on the left (n1 of them) pair with those seen
# the other way (n2): n1 * n2 pairs, agreeing where the labels match.
_SIDE = "SUM(CASE WHEN shown_left_id {0} lo AND label = '{1}' THEN 1 ELSE 0 END) AS {2}{1}"
SWAPS = """SELECT judge, COALESCE(SUM(({left}) * ({right})), 0), COALESCE(SUM({agreeing}), 0) FROM (
  SELECT judge, {sides} FROM results_counted WHERE kind = 'pairwise' AND judge <> '' GROUP BY lo, hi, judge
) items GROUP BY judge"""


def judge_vs_majority_sql():
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite's MAX of several values
    cases = []
    for label in LABELS:
        others = ", ".join(other for other in LABELS if other != label)
        cases.append(f"WHEN {label} > {greatest}({others}) THEN '{label}'")
    votes = ", ".join(_VOTES.format(label) for label in LABELS)
    return JUDGE_VS_MAJORITY.format(majority=" ".join(cases), votes=votes)


def swaps_sql():
    sides = ", ".join(_SIDE.format(op, label, side) for op, side in (("=", "l_"), ("<>", "r_")) for label in LABELS)
    return SWAPS.format(
        left=" + ".join(f"l_{label}" for label in LABELS),
        right=" + ".join(f"r_{label}" for label in LABELS),
        agreeing=" + ".join(f"l_{label} * r_{label}" for label in LABELS),
        sides=sides,
    )


@dataclass(frozen=True)
class Scope:
    """What counts: the source, the runs (rows per run) or None (rows per model), stale ones too."""

    source: str | None = None
    runs: tuple[int, ...] | None = None
    include_stale: bool = False
    by_template: bool = False  # rows per model and prompt template version (not with runs)

    def select(self, questions):
        """The SELECT of the judgements that count, and its parameters. ``questions``:
        {key: ids of the rubrics where it is a rating}; answer n is column ``q<n>``."""
        postgres = connection.vendor == "postgresql"
        key_a, key_b = _BY_RUN if self.runs is not None else _BY_TEMPLATE if self.by_template else _BY_MODEL
        answers, params = _answer_columns(questions)
        where, params = [], [*params, False, False]
        if not self.include_stale:
            where.append("j.prompt_hash = t.prompt_hash")
        if self.source is not None:
            where.append("t.source = %s")
            params.append(self.source)
        if self.runs is not None:
            marks = ", ".join(["%s"] * len(self.runs))
            where.append(f"ja.run_id IN ({marks}) AND (jb.id IS NULL OR jb.run_id IN ({marks}))")
            params += [*self.runs, *self.runs]
        # Byte-order text on PostgreSQL: grouping 100,000 rows by model names in the
        # database's locale took 0.4 s of strcoll; in "C", a tenth of it.
        c = ' COLLATE "C"' if postgres else ""
        sql = _COUNTED.format(
            c=c,
            key_a=key_a.format(c=c),
            key_b=key_b.format(c=c),
            least="LEAST" if postgres else "MIN",
            greatest="GREATEST" if postgres else "MAX",
            answers=answers,
            judgement=Judgement._meta.db_table,
            task=Task._meta.db_table,
            job=LLMJob._meta.db_table,
            where="".join(f"\n  AND {condition}" for condition in where),
        )
        return sql, params


def _answer_columns(questions):
    """Each rating answer as a number (null where the judgement's rubric has no such rating)."""
    columns, params = [], []
    for n, (key, rubric_ids) in enumerate(questions.items()):
        if connection.vendor == "postgresql":
            value, param = "CAST(j.answers ->> %s AS double precision)", key
        else:
            value, param = "CAST(json_extract(j.answers, %s) AS REAL)", f"$.{key}"
        marks = ", ".join(["%s"] * len(rubric_ids))
        columns.append(f",\n       CASE WHEN j.kind = 'score' AND j.rubric_id IN ({marks}) THEN {value} END AS q{n}")
        params += [*rubric_ids, param]
    return "".join(columns), params


class Counted:
    """The judgements that count, as a temporary table for the statements above:
    one pass over the judgements and their jobs, then each statement reads
    only the narrow rows kept (about 7x faster than repeating the joins in a
    CTE per statement: 100,000 judgements on PostgreSQL)."""

    def __init__(self, scope, questions):
        self.scope, self.questions = scope, questions

    def __enter__(self):
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.cursor = connection.cursor()
        sql, params = self.scope.select(self.questions)
        postgres = connection.vendor == "postgresql"
        keep = " ON COMMIT DROP" if postgres else ""
        if postgres:
            # Sorts and hashes of ~100,000 narrow rows in memory (4 MB spilled PAIRS' sort to disk: 0.6 s).
            self.cursor.execute("SET LOCAL work_mem = '64MB'")
        self.cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.cursor.execute(f"CREATE TEMPORARY TABLE {TABLE}{keep} AS {sql}", params)
        if postgres:
            # A few statistics (a 3,000-row sample: ~50 ms at 100,000 judgements) so that
            # PAIRS is hashed rather than sorted (0.1 s instead of 0.6 s); the full ANALYZE took 0.4 s.
            self.cursor.execute("SET LOCAL default_statistics_target = 10")
            self.cursor.execute(f"ANALYZE {TABLE}")
        return self

    def __exit__(self, *error):
        try:
            if error[0] is None:
                self.cursor.execute(f"DROP TABLE {TABLE}")
            self.cursor.close()
        finally:
            self._atomic.__exit__(*error)

    def fetch(self, statement, params=()):
        self.cursor.execute(statement, params)
        return self.cursor.fetchall()

    def score_sums(self):
        """Score judgements per (judge, blind, row): their count, then for each
        rating question the count, sum and sum of squares of its answers."""
        columns = "".join(f", COUNT(q{n}), SUM(q{n}), SUM(q{n} * q{n})" for n in range(len(self.questions)))
        return self.fetch(
            f"SELECT judge, blind, a1, a2, COUNT(*){columns} FROM {TABLE} WHERE kind = 'score' "
            "GROUP BY judge, blind, a1, a2"
        )


def check_types(scope):
    """The check types the runs in question were given, in checks.TYPES order
    (each is a JSON lookup on every job counted: ask only for those in use)."""
    runs = Run.objects.exclude(checks=[])
    if scope.runs is not None:
        runs = runs.filter(pk__in=scope.runs)
    used = {check.get("type") for checks_of_run in runs.values_list("checks", flat=True) for check in checks_of_run}
    return [kind for kind in checks.TYPES if kind in used]


def check_counts(scope):
    """[(row key, check type, passed, n)]: the automatic checks of the outputs
    the rows stand for (succeeded, visible generate jobs of a run)."""
    kinds = check_types(scope)
    if not kinds:
        return []
    jobs = LLMJob.objects.judgeable().filter(run__isnull=False)
    if scope.source is not None:
        jobs = jobs.filter(task__source=scope.source)
    keys = ("run_id",) if scope.runs is not None else ("provider", "model", "template_id")
    if scope.runs is not None:
        jobs = jobs.filter(run_id__in=scope.runs)
    aggregates = {}
    for kind in kinds:
        aggregates[f"{kind}_n"] = Count("pk", filter=Q(check_results__has_key=kind))
        aggregates[f"{kind}_passed"] = Count("pk", filter=Q(**{f"check_results__{kind}__exact": True}))
    result = []
    for row in jobs.values(*keys).annotate(**aggregates).order_by():
        key = (row["run_id"], "") if scope.runs is not None else _model_key(scope, row)
        result += [(key, kind, row[f"{kind}_passed"], row[f"{kind}_n"]) for kind in kinds if row[f"{kind}_n"]]
    return result


def _model_key(scope, row):
    if not scope.by_template:
        return row["provider"], row["model"]
    return row["provider"], f"{row['model']}{TEMPLATE_MARK}{row['template_id'] or ''}"
