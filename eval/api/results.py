"""``GET /api/results``: ratings, position bias and agreement (staff only).
A thin caller of eval/evaluation/results.py."""

from ninja import Query, Router

from eval import access
from eval.api.errors import forbidden
from eval.api.responses import answers
from eval.api.results_schemas import ResultFilters, ResultsOut
from eval.evaluation.results import report as computed

router = Router(tags=["results"])


@router.get("", response=answers({200: ResultsOut}, 400, 403), url_name="api-results")
def get_results(request, query: Query[ResultFilters]):
    """Current judgements, non-stale unless `include_stale=1`, one row per run (`runs=A,B`)
    or per provider and model (`group_by=template`: and prompt template version); humans
    and each LLM judge apart, blind and not apart.
    Means with Student's t 95% intervals; Bradley-Terry ratings on the Elo scale with a
    seeded bootstrap 95% interval (1,000 resamples); Wilson intervals on rates."""
    if not access.is_staff(request.user):
        raise forbidden("results are for staff")
    return computed.results(
        source=query.source, runs=query.runs, include_stale=query.include_stale, group_by=query.group_by
    )
