"""The judgements behind a results figure (/judgements/, staff): the list of
GET /api/judgements drawn on the server, with the same filters (the results
page's rows and win-rate cells link here) and keyset pages, newest first."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from eval import access
from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews import judgement_filters, judgement_list
from eval.models import Judgement, Run
from eval.pages.common import QueryRefused, cursor, page, query

FILTERS = ("source", "run", "runs", "model", "judged_by", "judge", "blind", "kind", "include_stale")
_BOOLEAN = {"1": True, "true": True, "0": False, "false": False, "": None}


def _flag(request, name):
    value = request.GET.get(name, "").lower()
    if value not in _BOOLEAN:
        raise QueryRefused(f"{name} is true or false")
    return _BOOLEAN[value]


def _scope(request):
    get = request.GET.get
    try:
        return judgement_filters.build(
            source=get("source") or None,
            run=get("run"),
            runs=get("runs"),
            model=get("model"),
            judged_by=get("judged_by") or None,
            judge=get("judge"),
            blind=_flag(request, "blind"),
            kind=get("kind") or None,
        )
    except InvalidInput as error:
        raise QueryRefused(str(error)) from None


def _run_names(scope):
    runs = Run.objects.in_bulk(set(scope.run) | set(scope.runs))
    return lambda run_id: f"#{run_id} {runs[run_id].name}" if run_id in runs else f"#{run_id}"


def describe(scope, include_stale):
    """The filters in words, one phrase each ("between runs #3 A and #4 B", "LLM judge echo/echo-judge")."""
    name = _run_names(scope)
    words = []
    if len(scope.run) == 2:
        words.append(f"between runs {name(scope.run[0])} and {name(scope.run[1])}")
    elif scope.run:
        words.append(f"run {name(scope.run[0])}")
    if scope.runs:
        words.append("within runs " + ", ".join(name(run_id) for run_id in scope.runs))
    if scope.model:
        words.append(("between " if len(scope.model) == 2 else "model ") + " and ".join(scope.model))
    if scope.source:
        words.append(f"source {scope.source}")
    if scope.judge:
        words.append(f"LLM judge {scope.judge}")
    elif scope.judged_by:
        words.append("judged by humans" if scope.judged_by == "human" else "LLM judges")
    if scope.blind is not None:
        words.append("blind" if scope.blind else "not blind")
    if scope.kind:
        words.append("pairwise verdicts" if scope.kind == Judgement.Kind.PAIRWISE else "scores")
    words.append("stale ones included" if include_stale else "stale ones left out")
    return words


def _verdict(judgement, models):
    verdict = judgement.verdict
    if verdict in (Judgement.Verdict.A, Judgement.Verdict.B):
        return f"{models[0 if verdict == Judgement.Verdict.A else 1]} better"
    return {Judgement.Verdict.TIE: "tie", Judgement.Verdict.BOTH_BAD: "both bad"}.get(verdict, "")


def row(judgement):
    """What a row of the list shows of one judgement."""
    jobs = [judgement.job_a] + ([judgement.job_b] if judgement.job_b_id else [])
    models = [f"{job.provider}/{job.model}" for job in jobs]
    given = (judgement.answers or {}).items()
    answers = ", ".join(f"{key}: {value}" for key, value in given if value not in ("", None))
    return {
        "judgement": judgement,
        "outputs": [
            {"model": model, "run": job.run_id, "left": job.pk == judgement.shown_left_id and len(jobs) == 2}
            for model, job in zip(models, jobs, strict=True)
        ],
        "verdict": _verdict(judgement, models),
        "answers": answers,
        "by": judgement.reviewer.get_username()
        if judgement.reviewer_id
        else f"LLM judge {judgement.judge_provider}/{judgement.judge_model}",
        "judge_run": judgement.judge_job.run_id if judgement.judge_job_id else None,
        "stale": judgement.prompt_hash != judgement.task.prompt_hash,
    }


@page
def judgements(request):
    if not access.is_staff(request.user):
        raise PermissionDenied("The judgements list is for staff, like the results. Ask an admin if you need it.")
    scope = _scope(request)
    include_stale = bool(_flag(request, "include_stale"))
    found, next_cursor = judgement_list.chosen(scope, include_stale=include_stale, after=cursor(request, "after"))
    filters = {name: request.GET.get(name, "") for name in FILTERS}
    context = {
        "rows": [row(judgement) for judgement in found],
        "described": describe(scope, include_stale),
        "filter_query": query(**filters),
        "next_cursor": next_cursor,
        "first_page": not request.GET.get("after"),
    }
    return render(request, "judgements.html", context)
