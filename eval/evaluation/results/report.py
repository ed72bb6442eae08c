"""``/api/results`` (DESIGN "Evaluation"): which model is better, by how much,
and how far the verdicts can be trusted.

Rows are runs (``runs=``) or (provider, model) pairs. Judgements that count
are current, of visible outputs and not stale (unless ``include_stale``).
Figures are kept apart by who judged (humans; each LLM judge model) and by
blind or not: a *segment*. Per row and segment: the judgement count, each
rating question's mean (score judgements) with a t interval, wins, losses,
ties and both-bad, and a Bradley-Terry rating with a bootstrap interval;
per segment the win-rate matrix. Then position bias, agreement, reviewers
and the runs' automatic checks. The counting is SQL (results/sql.py), the
statistics numpy (stats.py); this module only puts them together.
"""

from concurrent.futures import ThreadPoolExecutor

from eval.evaluation.errors import InvalidInput
from eval.evaluation.results import pairwise as results_pairwise
from eval.evaluation.results import sql as results_sql
from eval.evaluation.results import stats
from eval.evaluation.results.agreement import agreement, human_confusions, position_bias, reviewers
from eval.models import PromptTemplate, Rubric, Run

BOOTSTRAP_THREADS = 2
METHODS = {
    "mean_interval": "Student's t, 95%: mean +- t(0.975, n-1) * sd / sqrt(n)",
    "rate_interval": "Wilson score, 95%",
    "rating": "Bradley-Terry maximum likelihood on the Elo scale (400 log10, mean 1000); ties half, both-bad left out",
    "rating_interval": "percentile bootstrap, 95%: each pair's games redrawn from its multinomial",
    "resamples": stats.BOOTSTRAP_RESAMPLES,
    "seed": stats.BOOTSTRAP_SEED,
    "kappa": "Cohen's kappa on verdicts about the same two outputs (first, second, tie, both_bad)",
}


def results(*, source=None, runs=None, include_stale=False, group_by=None):
    """``group_by`` "template": rows per model and prompt template version (without ``runs``)."""
    if group_by == "template" and runs:
        raise InvalidInput("group_by=template gives rows per model and template: leave runs out", field="group_by")
    scope = results_sql.Scope(
        source=source or None,
        runs=tuple(runs) if runs else None,
        include_stale=include_stale,
        by_template=group_by == "template",
    )
    questions = rating_questions()
    # The bootstraps (numpy, which lets go of the GIL) run on threads while the
    # remaining statements run in the database: at 100,000 judgements over 20
    # models, ~250 ms of resampling hidden behind ~250 ms of queries. The
    # threads never touch the database (a test's transaction is not theirs).
    with ThreadPoolExecutor(max_workers=BOOTSTRAP_THREADS) as pool:
        with results_sql.Counted(scope, questions) as counted:
            pairs = counted.fetch(results_sql.PAIRS)
            order = _row_order(scope)
            rated = {
                segment: pool.submit(results_pairwise.segment_ratings, pairs, segment, order)
                for segment in {(judge, bool(blind)) for judge, blind, *_ in pairs}
            }
            scores = counted.score_sums()
            sides = counted.fetch(results_sql.SIDES)
            confusions = human_confusions(counted)
            agreed = agreement(counted, confusions)
        check_counts = results_sql.check_counts(scope)
        rated = {segment: future.result() for segment, future in rated.items()}
    rows = _rows(scope, pairs, scores, check_counts)
    index = {row["_key"]: n for n, row in enumerate(rows)}
    segments = _segments(pairs, scores)
    figures = {
        segment: results_pairwise.segment_figures(index, pairs, segment, rated.get(segment, {})) for segment in segments
    }
    means = _score_figures(index, scores, list(questions), rating_scales())
    for n, row in enumerate(rows):
        row["figures"] = [
            _figure(segment, means.get((segment, n)) or _no_scores(questions), figures[segment]["rows"][n])
            for segment in segments
        ]
        row["checks"] = _checks(row.pop("_key"), check_counts)
    keys = [row["key"] for row in rows]
    return {
        "group_by": "run" if scope.runs is not None else "template" if scope.by_template else "model",
        "source": scope.source,
        "runs": list(scope.runs) if scope.runs is not None else None,
        "include_stale": include_stale,
        "judgements": sum(count for _, _, count, _, _ in sides),
        "methods": METHODS,
        "questions": list(questions),
        "rows": rows,
        "segments": [
            {**_segment_json(segment), "win_rate": {"keys": keys, **figures[segment]["win_rate"]}}
            for segment in segments
        ],
        "position_bias": position_bias(sides),
        "agreement": agreed,
        "reviewers": reviewers(sides, confusions),
    }


def _row_order(scope):
    """How _rows orders row keys: by the runs asked for, or by (provider, model)."""
    if scope.runs is None:
        return lambda key: key
    position = {(run_id, ""): n for n, run_id in enumerate(dict.fromkeys(scope.runs))}
    return position.get


def rating_questions():
    """{key: [ids of the rubrics in which it is a rating question]}, in first-seen order."""
    keys = {}
    for rubric in Rubric.objects.order_by("id").only("id", "questions"):
        for question in rubric.questions or []:
            if isinstance(question, dict) and question.get("type") == "rating" and question.get("key"):
                keys.setdefault(question["key"], []).append(rubric.pk)
    return keys


def rating_scales():
    """{key: (lowest, highest)}: the widest scale its rating questions have (default 1-5)."""
    scales = {}
    for rubric in Rubric.objects.only("questions"):
        for question in rubric.questions or []:
            if isinstance(question, dict) and question.get("type") == "rating" and question.get("key"):
                low, high = question.get("scale") or (1, 5)
                known = scales.get(question["key"], (low, high))
                scales[question["key"]] = (min(low, known[0]), max(high, known[1]))
    return scales


def _rows(scope, pairs, scores, check_counts):
    if scope.runs is not None:
        found = {run.pk: run for run in Run.objects.filter(pk__in=scope.runs)}
        missing = [run_id for run_id in scope.runs if run_id not in found]
        if missing:
            raise InvalidInput(f"no run {missing[0]}", field="runs")
        return [_run_row(found[run_id]) for run_id in dict.fromkeys(scope.runs)]
    keys = {(a1, a2) for _, _, a1, a2, *_ in scores}
    keys |= {(a1, a2) for _, _, a1, a2, _, _, _, _ in pairs} | {(b1, b2) for _, _, _, _, b1, b2, _, _ in pairs}
    keys |= {key for key, *_ in check_counts}
    if scope.by_template:
        return _template_rows(sorted(keys))
    return [
        {"_key": key, "key": f"{key[0]}/{key[1]}", "provider": key[0], "model": key[1], "run": None}
        for key in sorted(keys)
    ]


def _template_rows(keys):
    """Rows per (provider, model, template version): keys carry the template id after the model."""
    split = [(key, *key[1].rpartition(results_sql.TEMPLATE_MARK)[::2]) for key in keys]
    ids = {int(template_id) for _, _, template_id in split if template_id}
    names = {t.pk: str(t) for t in PromptTemplate.objects.filter(pk__in=ids)}
    rows = []
    for key, model, template_id in split:
        template = {"id": int(template_id), "name": names.get(int(template_id), "?")} if template_id else None
        label = template["name"] if template else "no template"
        rows.append(
            {
                "_key": key,
                "key": f"{key[0]}/{model} · {label}",
                "provider": key[0],
                "model": model,
                "run": None,
                "template": template,
            }
        )
    return rows


def _run_row(run):
    return {
        "_key": (run.pk, ""),
        "key": str(run.pk),
        "provider": run.provider,
        "model": run.model,
        "run": {"id": run.pk, "name": run.name, "kind": run.kind},
    }


def _segments(pairs, scores):
    """(judge, blind) of each segment with judgements: humans first, blind first, then judges by name."""
    found = {(judge, bool(blind)) for judge, blind, *_ in pairs} | {(judge, bool(blind)) for judge, blind, *_ in scores}
    return sorted(found, key=lambda segment: (segment[0] != "", segment[0], not segment[1]))


def _segment_json(segment):
    judge, blind = segment
    return {"judged_by": "judge" if judge else "human", "judge": judge or None, "blind": blind}


def _figure(segment, scores, pairwise):
    """One row's figures in one segment: its judgements (scores and pairwise verdicts it took part in)."""
    return {**_segment_json(segment), "judgements": scores["scores"] + pairwise["games"], **scores, **pairwise}


def _no_scores(questions):
    return {
        "scores": 0,
        "questions": [{"key": key, "n": 0, "mean": None, "low": None, "high": None} for key in questions],
    }


def _score_figures(index, scores, keys, scales):
    """{(segment, row index): {"scores", "questions"}} from score_sums' rows."""
    figures = {}
    for judge, blind, a1, a2, count, *sums in scores:
        if (a1, a2) not in index:
            continue
        questions = []
        for n, key in enumerate(keys):
            values, total, squares = sums[3 * n : 3 * n + 3]
            mean, low, high = stats.mean_interval(
                values, float(total or 0), float(squares or 0), within=scales.get(key)
            )
            questions.append({"key": key, "n": values, "mean": mean, "low": low, "high": high})
        figures[((judge, bool(blind)), index[(a1, a2)])] = {"scores": count, "questions": questions}
    return figures


def _checks(key, check_counts):
    figures = []
    for row_key, kind, passed, n in check_counts:
        if row_key == key:
            rate, low, high = stats.wilson(passed, n)
            figures.append({"check": kind, "passed": passed, "n": n, "rate": rate, "low": low, "high": high})
    return figures
