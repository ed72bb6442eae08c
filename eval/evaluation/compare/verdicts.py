"""What judges and reviewers said of two runs' outputs, per task.

Judges: the judge runs that compared the two runs (either order). Their
verdicts are turned round to say which run won ("a" = run A). Per judge
and task one outcome: both swap orders of a task count once (they agree,
or one is a tie: that side wins; they disagree: a tie); ties and both-bad
are dropped from the test, as DESIGN says.

Reviewers: their current pairwise verdicts on one output of each run,
counted per task; who said what only for staff (the caller decides)."""

from collections import defaultdict

from django.db.models import Count, F, Q

from eval.evaluation.reviews.judgements import current
from eval.models import Judgement, Run

A_WINS, B_WINS, TIE, BOTH_BAD = "a", "b", "tie", "both_bad"


def _winner_run(row):
    if row["verdict"] == Judgement.Verdict.A:
        return row["run_a"]
    if row["verdict"] == Judgement.Verdict.B:
        return row["run_b"]
    return None


def _sign(row, run_a):
    """+1 run A won, -1 run B won, 0 a tie, None both bad."""
    if row["verdict"] == Judgement.Verdict.BOTH_BAD:
        return None
    winner = _winner_run(row)
    return 0 if winner is None else (1 if winner == run_a else -1)


def _outcome(for_a, for_b, ties):
    """One task's outcome from its verdicts (both orders of a swapped pair): the
    side with more votes; equal votes a tie; only both-bad verdicts: both bad."""
    if not (for_a or for_b or ties):
        return BOTH_BAD
    return A_WINS if for_a > for_b else B_WINS if for_b > for_a else TIE


def judge_runs(run_a, run_b):
    """The judge runs that compared ``run_a`` and ``run_b`` (either order), by id."""
    forward = Run.objects.filter(kind=Run.Kind.JUDGE, compare_a_id=run_a, compare_b_id=run_b)
    backward = Run.objects.filter(kind=Run.Kind.JUDGE, compare_a_id=run_b, compare_b_id=run_a)
    return list((forward | backward).order_by("id").only("id", "provider", "model"))


def _pairwise(queryset, run_a, run_b):
    return (
        queryset.filter(kind=Judgement.Kind.PAIRWISE)
        .filter(job_a__run_id__in=(run_a, run_b), job_b__run_id__in=(run_a, run_b))
        .exclude(job_a__run_id=F("job_b__run_id"))
        .annotate(run_a=F("job_a__run_id"), run_b=F("job_b__run_id"))
    )


def _votes(run_a):
    """Counts per (judge run, task), in SQL: 10,000 rows back rather than 20,000 verdicts.
    A judge run judges one job of each run, so job_a alone says which run is which."""
    shown_first = Q(job_a__run_id=run_a)
    won_a = Q(verdict=Judgement.Verdict.A) & shown_first | Q(verdict=Judgement.Verdict.B) & ~shown_first
    decisive = Q(verdict__in=(Judgement.Verdict.A, Judgement.Verdict.B))
    return {
        "for_a": Count("pk", filter=won_a),
        "for_b": Count("pk", filter=decisive & ~won_a),
        "ties": Count("pk", filter=Q(verdict=Judgement.Verdict.TIE)),
    }


def judge_outcomes(run_a, run_b, task_ids):
    """(judge runs, {judge run id: {task id: outcome}}), outcome one of a, b, tie, both_bad;
    ``task_ids`` a set: the tasks compared."""
    judges = judge_runs(run_a, run_b)
    if not judges:
        return judges, {}
    mine = Judgement.objects.filter(kind=Judgement.Kind.PAIRWISE, judge_job__run_id__in=[j.pk for j in judges])
    rows = current(mine).order_by().values("task_id", judge_run=F("judge_job__run_id")).annotate(**_votes(run_a))
    found = defaultdict(dict)
    for row in rows.iterator(chunk_size=5000):
        if row["task_id"] not in task_ids:
            continue  # a task left out of the comparison (its prompt changed)
        found[row["judge_run"]][row["task_id"]] = _outcome(row["for_a"], row["for_b"], row["ties"])
    return judges, found


def human_verdicts(run_a, run_b, task_ids):
    """{task id: [(reviewer username, outcome)]}: reviewers' current verdicts, turned to runs."""
    rows = _pairwise(current(Judgement.objects.filter(reviewer__isnull=False)), run_a, run_b).values(
        "task_id", "verdict", "run_a", "run_b", username=F("reviewer__username")
    )
    found = defaultdict(list)
    for row in rows.order_by("task_id", "created_at").iterator(chunk_size=2000):
        if row["task_id"] not in task_ids:
            continue
        sign = _sign(row, run_a)
        outcome = BOTH_BAD if sign is None else {1: A_WINS, -1: B_WINS, 0: TIE}[sign]
        found[row["task_id"]].append((row["username"], outcome))
    return found


def counts(outcomes):
    """{"a_wins", "b_wins", "ties", "both_bad"} of an iterable of outcomes."""
    tally = {A_WINS: 0, B_WINS: 0, TIE: 0, BOTH_BAD: 0}
    for outcome in outcomes:
        tally[outcome] += 1
    return {"a_wins": tally[A_WINS], "b_wins": tally[B_WINS], "ties": tally[TIE], "both_bad": tally[BOTH_BAD]}
