"""Shapes of a run's work (``/api/runs/<id>/jobs``), its comparison with
another run (``/api/runs/compare``) and its baseline mark."""

from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field

from eval.api.schemas import JobOut
from eval.evaluation.runs import job_list

RUN_JOBS_CURSOR = r"^[1-9][0-9]{0,17}\.[0-9a-f]{32}$"


def _blank_is_none(value):
    return None if value == "" else value


class RunJobFilters(Schema):
    show: Annotated[Literal[job_list.FILTERS] | None, BeforeValidator(_blank_is_none)] = Field(
        None,
        description="failed_checks: outputs that failed a check; errors: failed jobs; "
        "unreviewed: tasks you have neither reviewed nor judged.",
    )
    after: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, pattern=RUN_JOBS_CURSOR, description="The `next` cursor of the previous page."
    )


class RunTaskRef(Schema):
    id: int
    title: str
    external_id: str


class RunJobOut(JobOut):
    task_ref: RunTaskRef = Field(description="The job's task, for its link.")
    checks: dict[str, bool] = Field(description="The run's checks of this output: {check: passed}.")


class RunJobPage(Schema):
    run: int
    jobs: list[RunJobOut]
    next: str | None = Field(description="The cursor of the next page (`after=`), null on the last.")
    count: int = Field(description="Jobs matching the filter, all pages.")
