"""Shapes of ``GET /api/judgements``: the judgements behind a results figure."""

from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field

from eval.api.evaluation_schemas import JudgementOut
from eval.api.schemas import Cursor
from eval.evaluation.reviews.judgement_filters import JUDGED_BY, MAX_SOURCE
from eval.models import Judgement


def _blank_is_none(value):
    return None if value == "" else value


def _optional(kind):
    return Annotated[kind | None, BeforeValidator(_blank_is_none)]


RUN_PAIR = r"^\d{1,18}(,\d{1,18})?$"
RUN_LIST = r"^\d{1,18}(,\d{1,18})*$"


class JudgementFilters(Schema):
    source: _optional(str) = Field(None, max_length=MAX_SOURCE, description="Only tasks of this source.")
    run: _optional(str) = Field(
        None,
        max_length=40,
        pattern=RUN_PAIR,
        description="A run id: the judgements it is in (one of its outputs judged, or its judge jobs' verdicts); "
        "two ids `A,B`: the pairwise verdicts between them (a win-rate cell).",
    )
    runs: _optional(str) = Field(
        None,
        max_length=2000,
        pattern=RUN_LIST,
        description="Run ids `A,B,...` as GET /api/results `runs=`: every output judged is from one of them.",
    )
    model: _optional(str) = Field(
        None,
        max_length=801,
        description="`provider/model`: the judgements of its outputs; two, `p/m,p/m`: the verdicts between them.",
    )
    judged_by: _optional(Literal[JUDGED_BY]) = Field(None, description="human (a reviewer) or judge (an LLM judge).")
    judge: _optional(str) = Field(None, max_length=400, description="An LLM judge's `provider/model`.")
    blind: _optional(bool) = Field(None, description="Only blind (true) or not blind (false) verdicts.")
    kind: _optional(Literal[tuple(Judgement.Kind.values)]) = Field(None, description="score or pairwise.")
    include_stale: bool = Field(False, description="Also judgements made against an earlier prompt or reference.")
    after: Cursor = Field(None, description="The `next` cursor of the previous page.")


class JudgementItem(JudgementOut):
    task_title: str
    source: str = Field(description="The task's source.")
    models: list[str] = Field(description="Each judged output's `provider/model`, in `jobs` order.")
    runs: list[int | None] = Field(description="Each judged output's run (null: launched by hand), in `jobs` order.")
    judge_run: int | None = Field(description="The judge run whose job made this verdict.")


class JudgementPage(Schema):
    judgements: list[JudgementItem]
    next: int | None = Field(description="Pass as `after` for the next (older) page; null on the last.")
