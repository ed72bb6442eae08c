"""Two runs task by task, as ``GET /api/runs/compare`` and the compare page
show them (DESIGN "Comparison").

Only the checks both runs ran with the same settings are compared (a check
is its type and pattern); the others are named in ``checks_left_out``.
Per check and task: A passed and B failed is a regression, the reverse a
fix; a task the check does not apply to (no reference) is left out of it.
Per check, the regressions and fixes give DESIGN's p: P(X >= regressions)
for X ~ Bin(regressions + fixes, 1/2) (results/stats.binomial_p_at_least).
Per judge, the same test on the tasks it preferred A (a regression of B)
or B. Human verdicts are counts: reviewers are not a fixed instrument.

The summary covers every task compared; filters (``only``, ``check``) and
pages (keyset on the task id) narrow the rows only."""

from dataclasses import dataclass

from eval.evaluation.compare import pairs as pair_rows
from eval.evaluation.compare import verdicts
from eval.evaluation.errors import InvalidInput
from eval.evaluation.results.stats import binomial_p_at_least

PAGE_SIZE = 50
ONLY = ("regressions", "changed")
REGRESSION, FIX = "regression", "fix"


@dataclass
class Comparison:
    """Everything both the API and the gate read."""

    run_a: object
    run_b: object
    checks: list
    left_out: list
    pairs: list  # compared (prompt unchanged)
    prompt_changed: int
    tasks_a: int
    tasks_b: int
    judges: list
    outcomes: dict  # {judge run id: {task id: outcome}}
    humans: dict  # {task id: [(username, outcome)]}


def check_name(check):
    return check["type"] + (f" /{check['pattern']}/" if check.get("pattern") else "")


def common_checks(run_a, run_b):
    """(the checks both ran with the same settings, the names of the others)."""
    both = [check for check in run_a.checks if check in run_b.checks]
    others = [check_name(c) for c in run_a.checks + run_b.checks if c not in both]
    return both, sorted(set(others))


def build(run_a, run_b):
    """The comparison of two runs: one SQL join for the pairs, one query per kind of verdict."""
    checks, left_out = common_checks(run_a, run_b)
    found = pair_rows.pairs(run_a.pk, run_b.pk, [check["type"] for check in checks])
    kept = [pair for pair in found if not pair.prompt_changed]
    task_ids = {pair.task_id for pair in kept}
    judges, outcomes = verdicts.judge_outcomes(run_a.pk, run_b.pk, task_ids)
    tasks_a, tasks_b = pair_rows.tasks_ran(run_a.pk, run_b.pk)
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        checks=checks,
        left_out=left_out,
        pairs=kept,
        prompt_changed=len(found) - len(kept),
        tasks_a=tasks_a,
        tasks_b=tasks_b,
        judges=judges,
        outcomes=outcomes,
        humans=verdicts.human_verdicts(run_a.pk, run_b.pk, task_ids),
    )


def change(a, b):
    if a is True and b is False:
        return REGRESSION
    if a is False and b is True:
        return FIX
    return None


def _check_summary(comparison, check):
    name = check["type"]
    regressions = fixes = compared = 0
    for pair in comparison.pairs:
        a, b = pair.a.check(name), pair.b.check(name)
        if a is None or b is None:
            continue
        compared += 1
        moved = change(a, b)
        regressions += moved == REGRESSION
        fixes += moved == FIX
    p_value = binomial_p_at_least(regressions, regressions + fixes)
    return {"check": name, "regressions": regressions, "fixes": fixes, "tasks": compared, "p_value": p_value}


def judge_label(judge):
    return f"judge run {judge.pk} ({judge.provider}/{judge.model})"


def _verdict_summary(comparison, judge):
    tally = verdicts.counts(comparison.outcomes.get(judge.pk, {}).values())
    # A judge preferring A's output is a regression of B.
    p_value = binomial_p_at_least(tally["a_wins"], tally["a_wins"] + tally["b_wins"])
    return {"by": judge_label(judge), "judge_run": judge.pk, **tally, "p_value": p_value}


def _totals(comparison):
    """Each side's cost and tokens over the compared tasks; None where no job of the
    side has one (an unpriced model, imported outputs): unknown is not 0."""
    money = {"a": None, "b": None}
    tokens = {side: {"input": None, "output": None} for side in ("a", "b")}
    for pair in comparison.pairs:
        for side, job in (("a", pair.a), ("b", pair.b)):
            money[side] = _add(money[side], job.cost_usd)
            tokens[side]["input"] = _add(tokens[side]["input"], job.input_tokens)
            tokens[side]["output"] = _add(tokens[side]["output"], job.output_tokens)
    return {side: None if total is None else round(total, 6) for side, total in money.items()}, tokens


def _add(total, value):
    return total if value is None else (total or 0) + value


def summary(comparison):
    cost, tokens = _totals(comparison)
    humans = verdicts.counts(outcome for found in comparison.humans.values() for _, outcome in found)
    return {
        "checks": [_check_summary(comparison, check) for check in comparison.checks],
        "checks_left_out": comparison.left_out,
        "verdicts": [_verdict_summary(comparison, judge) for judge in comparison.judges],
        "humans": humans,
        "cost_usd": cost,
        "tokens": tokens,
        "tasks": {
            "compared": len(comparison.pairs),
            "prompt_changed": comparison.prompt_changed,
            "only_a": comparison.tasks_a - len(comparison.pairs) - comparison.prompt_changed,
            "only_b": comparison.tasks_b - len(comparison.pairs) - comparison.prompt_changed,
            "changed_output": sum(pair.changed_output for pair in comparison.pairs),
        },
    }


def _row_checks(pair, checks):
    out = []
    for check in checks:
        name = check["type"]
        a, b = pair.a.check(name), pair.b.check(name)
        out.append({"check": name, "a": a, "b": b, "change": change(a, b)})
    return out


def _judged_a_better(comparison, pair):
    return any(per_task.get(pair.task_id) == verdicts.A_WINS for per_task in comparison.outcomes.values())


def _matches(comparison, pair, only, checks, by_check):
    row_checks = _row_checks(pair, checks)
    if by_check and row_checks[0]["a"] is None:
        return False  # the check does not apply to this task
    if only == "changed":
        return pair.changed_output
    if only == "regressions":
        regressed = any(c["change"] == REGRESSION for c in row_checks)
        return regressed or (not by_check and _judged_a_better(comparison, pair))
    return True


def _minus(x, y):
    return None if x is None or y is None else x - y


def _delta(a, b, seconds):
    return {
        "input_tokens": _minus(b.input_tokens, a.input_tokens),
        "output_tokens": _minus(b.output_tokens, a.output_tokens),
        "cost_usd": None if a.cost_usd is None or b.cost_usd is None else round(b.cost_usd - a.cost_usd, 6),
        "duration_s": _minus(seconds.get(b.job_id), seconds.get(a.job_id)),
    }


def _row(comparison, pair, checks, staff, seconds):
    judged = [
        {
            "by": judge_label(judge),
            "judge_run": judge.pk,
            "outcome": comparison.outcomes.get(judge.pk, {})[pair.task_id],
        }
        for judge in comparison.judges
        if pair.task_id in comparison.outcomes.get(judge.pk, {})
    ]
    people = comparison.humans.get(pair.task_id, [])
    row = {
        "task": pair.task_id,
        "a": pair.a.job_id,
        "b": pair.b.job_id,
        "checks": _row_checks(pair, checks),
        "changed_output": pair.changed_output,
        "verdicts": judged,
        "humans": verdicts.counts(outcome for _, outcome in people),
        "delta": _delta(pair.a, pair.b, seconds),
    }
    if staff:
        row["reviewers"] = [{"reviewer": name, "outcome": outcome} for name, outcome in people]
    return row


def rows(comparison, *, only="", check="", after=None, size=PAGE_SIZE, staff=False):
    """(one page of rows, the next cursor or None, how many rows match). Jobs are ids here."""
    if only and only not in ONLY:
        raise InvalidInput(f"only must be one of {', '.join(ONLY)}", field="only")
    checks = comparison.checks
    if check:
        checks = [c for c in checks if c["type"] == check]
        if not checks:
            raise InvalidInput(f"check must be one of the checks both runs ran: {check!r} is not", field="check")
    matching = [p for p in comparison.pairs if _matches(comparison, p, only, checks, bool(check))]
    start = [p for p in matching if after is None or p.task_id > after]
    page = start[:size]
    following = page[-1].task_id if len(start) > size else None
    seconds = pair_rows.durations([job.job_id for pair in page for job in (pair.a, pair.b)])
    return [_row(comparison, pair, checks, staff, seconds) for pair in page], following, len(matching)
