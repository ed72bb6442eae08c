"""Can the verdicts be trusted? Position bias, agreement and per-reviewer
figures of ``/api/results``, from counts grouped in SQL (results/sql.py).

- Position bias: the share of decisive pairwise verdicts (a or b) won by the
  output shown on the left, with a Wilson interval; humans together, and
  each LLM judge model apart. 0.5 is no bias.
- Between humans: Cohen's kappa of each two reviewers over the pairs of
  outputs both judged, averaged over the reviewer pairs (n: the items
  compared, summed over the pairs).
- Judge vs humans: each judge's verdicts against the human majority of the
  same pair (the label more humans gave than any other; items without one
  are left out).
- Swap consistency: two verdicts of the same judge on the same two outputs
  shown in opposite orders agree once each is read as "which output"; the
  rest are counted as inconsistent.
"""

from django.contrib.auth import get_user_model

from eval.evaluation.results import sql as results_sql
from eval.evaluation.results import stats


def _rate(left_wins, n):
    rate, low, high = stats.wilson(left_wins, n)
    return {"left_wins": left_wins, "n": n, "rate": rate, "low": low, "high": high}


def position_bias(sides):
    """[{"judged_by", "judge", "left_wins", "n", "rate", "low", "high"}]: humans, then each judge."""
    by_judge = {}
    for _, judge, _, left_n, left_wins in sides:
        totals = by_judge.setdefault(judge, [0, 0])
        totals[0] += int(left_wins)
        totals[1] += left_n
    return [
        {"judged_by": "judge" if judge else "human", "judge": judge or None, **_rate(*by_judge[judge])}
        for judge in sorted(by_judge)
    ]


def human_confusions(counted):
    """{(reviewer_1, reviewer_2): {(label_1, label_2): count}}, reviewer_1 < reviewer_2."""
    confusions = {}
    for first, second, label_1, label_2, count in counted.fetch(results_sql.HUMAN_PAIRS):
        confusions.setdefault((first, second), {})[(label_1, label_2)] = count
    return confusions


def agreement(counted, confusions):
    kappas = [stats.kappa(confusion) for confusion in confusions.values()]
    defined = [value for value, _ in kappas if value is not None]
    judges = {}
    for judge, label, majority, count in counted.fetch(results_sql.judge_vs_majority_sql()):
        judges.setdefault(judge, {})[(label, majority)] = count
    swaps = {judge: (int(pairs), int(agreeing)) for judge, pairs, agreeing in counted.fetch(results_sql.swaps_sql())}
    return {
        "humans": {
            "kappa": sum(defined) / len(defined) if defined else None,
            "n": sum(n for _, n in kappas),
            "reviewer_pairs": len(kappas),
        },
        "judges": [
            _judge_agreement(judge, judges.get(judge, {}), swaps.get(judge)) for judge in sorted({*judges, *swaps})
        ],
    }


def _judge_agreement(judge, confusion, swap):
    value, n = stats.kappa(confusion)
    pairs, consistent = swap or (0, 0)
    return {
        "judge": judge,
        "vs_human_majority": {"kappa": value, "n": n},
        "swap": {"pairs": pairs, "consistent": consistent, "inconsistent": pairs - consistent},
    }


def reviewers(sides, confusions):
    """Each reviewer's judgement count, left-side rate and kappa with the others (pooled over them)."""
    pooled = {}
    for (first, second), confusion in confusions.items():
        for label_pair, count in confusion.items():
            mine = pooled.setdefault(first, {})
            mine[label_pair] = mine.get(label_pair, 0) + count
            theirs = pooled.setdefault(second, {})
            theirs[label_pair[::-1]] = theirs.get(label_pair[::-1], 0) + count
    humans = [
        (reviewer, count, left_n, int(left_wins)) for reviewer, judge, count, left_n, left_wins in sides if not judge
    ]
    names = dict(get_user_model().objects.filter(pk__in=[row[0] for row in humans]).values_list("pk", "username"))
    answer = []
    for reviewer, count, left_n, left_wins in sorted(humans, key=lambda row: names.get(row[0], "")):
        value, n = stats.kappa(pooled.get(reviewer, {}))
        answer.append(
            {
                "reviewer": names.get(reviewer, str(reviewer)),
                "judgements": count,
                "left_side": _rate(left_wins, left_n),
                "agreement": {"kappa": value, "n": n},
            }
        )
    return answer
