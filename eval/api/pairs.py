"""``/api/pairs``: blind pairwise comparison. Nothing here names a task id, a
job, a model or a provider before the verdict: the token is the random id of
a stored assignment (eval/evaluation/pairs.py)."""

from django.http import HttpResponse
from ninja import Query, Router, Status

from eval import access
from eval.api.errors import invalid, not_found
from eval.api.evaluation_schemas import PairFilters, PairJudgementOut, PairOut, PairVerdict
from eval.api.responses import answers
from eval.evaluation.reviews import judgements, pairs

router = Router(tags=["pairs"])


def _reviewer(request):
    if not access.is_reviewer(request.user):
        raise not_found("no such pair")
    return request.user


@router.get("/next", response=answers({200: PairOut, 204: None}, 400, 404), url_name="api-pairs-next")
def next_pair(request, response: HttpResponse, query: Query[PairFilters]):
    """Your next blind pair (least-judged first; never one you judged, nor one holding an
    output whose model you have been shown), or 204 when none is left."""
    user = _reviewer(request)
    if query.runs:
        raise invalid("runs= needs evaluation runs, which this server does not have yet", "runs")
    assignment, remaining = pairs.next_pair(user, query.source)
    response["Cache-Control"] = "no-store"
    if assignment is None:
        return Status(204, None)
    return pairs.pair_json(assignment, remaining)


@router.post("/{token}/verdict", response=answers({201: PairJudgementOut}, 404, 409, 410, write=True))
def pair_verdict(request, token: str, payload: PairVerdict):
    """Your verdict on a served pair: left, right, tie or both_bad. Answers 201 with the
    judgement (left/right as a/b of its jobs) and the models revealed; `blind` is false if
    you had been shown either output's model before. A second verdict 409; an expired or
    skipped token 410."""
    user = _reviewer(request)
    judgement, assignment = pairs.submit_verdict(
        user, token, verdict=payload.verdict, answers=payload.answers, notes=payload.notes or ""
    )
    body = judgements.judgement_json(judgement, assignment.task.prompt_hash)
    return Status(201, {**body, "revealed": pairs.revealed(assignment)})


@router.post("/{token}/skip", response=answers({204: None}, 404, 409, 410, write=True))
def skip_pair(request, token: str):
    """Skip a pair: its token is spent (410 after); the pair comes back later, after the others."""
    pairs.skip(_reviewer(request), token)
    return Status(204, None)
