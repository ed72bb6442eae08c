"""``GET /api/exports/<what>.<jsonl|csv>`` (staff): the exports of
``manage.py export_reviews`` as downloads, streamed while they are read
(eval/evaluation/exports/). Bearer tokens work as everywhere in the API.

An unknown ``what`` or format is a 404 (the path does not validate:
eval/api/app.py); a bad query (a ``source`` over 200 characters, an
``include_stale`` that is not a boolean) a 400 ``invalid``. The status and
headers are sent before the first row is read: a database error mid-stream
cuts the download short (the client sees a truncated body), it cannot turn
into an error answer.
"""

from typing import Literal

from django.http import StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from eval import access
from eval.api.errors import forbidden
from eval.api.responses import answers
from eval.evaluation.exports import FORMATS, KINDS, MAX_SOURCE, Export
from eval.evaluation.exports.judgements import pair_jobs
from eval.evaluation.reviews import seen

router = Router(tags=["exports"])

What = Literal[tuple(KINDS)]
Extension = Literal[tuple(FORMATS)]
_TEXT = {"schema": {"type": "string"}}
DOWNLOAD = {
    200: {
        "description": "The export, streamed as an attachment: JSONL (one JSON object per line) or CSV "
        "(a header row, UTF-8 with a byte-order mark, formula cells escaped with a leading `'`).",
        "content": {"application/x-ndjson": _TEXT, "text/csv": _TEXT},
    }
}


class ExportQuery(Schema):
    source: str | None = Field(None, max_length=MAX_SOURCE, description="Only tasks of this source.")
    run: str | None = Field(
        None,
        max_length=40,
        pattern=r"^\d+(,\d+)?$",
        description="A run id: the judgements it is in (its outputs judged, or its judge jobs' verdicts) and the "
        "tasks it has a job on; two ids `A,B`: the pairwise verdicts between them.",
    )
    runs: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^\d+(,\d+)*$",
        description="Run ids `A,B,...` (GET /api/results `runs=`): judgements whose every output is from one of them.",
    )
    include_stale: bool = Field(False, description="Also judgements made against an earlier prompt or reference.")


@router.get(
    "/{what}.{extension}",
    response=answers({}, 400, 403, 404),
    openapi_extra={"responses": DOWNLOAD},
    url_name="api-export",
)
def download_export(request, what: What, extension: Extension, query: Query[ExportQuery]):
    """Staff only. `tasks`: one row per task with its current human judgements summarised
    and its reviews; `judgements`: one row per current judgement (human and LLM judge);
    `pairs`: preference pairs `{prompt, chosen, rejected, chosen_model, rejected_model,
    task, judged_by}` from pairwise verdicts that pick a side. Withdrawn and superseded
    judgements are never exported; stale ones only with `include_stale`. `run=` and `runs=`
    narrow it as on GET /api/judgements (an unknown run: 400 `invalid`)."""
    if not access.is_staff(request.user):
        raise forbidden("exports are for staff")
    export = Export(
        what, extension, source=query.source, include_stale=query.include_stale, run=query.run, runs=query.runs
    )
    if what == "pairs":  # outputs with their models: none of them is blind for the caller now
        seen.mark_selected(request.user.pk, pair_jobs(export.scope))
    response = StreamingHttpResponse(iter(export), content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename()}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
