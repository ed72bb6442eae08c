"""Shapes of a run's work (``/api/runs/<id>/jobs``), its comparison with
another run (``/api/runs/compare``) and its baseline mark."""

from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field

from eval.api.run_schemas import RunId
from eval.api.schemas import Cursor, JobOut
from eval.evaluation.compare import service
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


class CompareQuery(Schema):
    a: RunId = Field(description="Run A: the one compared against (e.g. the baseline).")
    b: RunId = Field(description="Run B: the one whose regressions are tested.")
    only: Annotated[Literal[service.ONLY] | None, BeforeValidator(_blank_is_none)] = Field(
        None,
        description="regressions: rows where a check went from pass to fail (or a judge preferred A); "
        "changed: rows whose outputs differ.",
    )
    check: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        None, max_length=40, description="Only this check (one both runs ran)."
    )
    after: Cursor = Field(None, description="The `next` cursor of the previous page (a task id).")


class CompareRun(Schema):
    id: int
    name: str
    kind: str
    provider: str
    model: str
    status: str


class CheckSummary(Schema):
    check: str
    regressions: int = Field(description="Tasks where A passed and B failed.")
    fixes: int = Field(description="Tasks where A failed and B passed.")
    tasks: int = Field(description="Tasks the check applied to in both runs.")
    p_value: float = Field(description="P(X >= regressions), X ~ Bin(regressions + fixes, 1/2); 1 with none.")


class VerdictCounts(Schema):
    a_wins: int
    b_wins: int
    ties: int
    both_bad: int


class VerdictSummary(VerdictCounts):
    by: str
    judge_run: int
    p_value: float = Field(description="P(X >= a_wins), X ~ Bin(a_wins + b_wins, 1/2): per task, ties dropped.")


class SideTotals(Schema):
    """Null on a side none of whose jobs has a known cost (an unpriced model, imported outputs)."""

    a: float | None
    b: float | None


class Tokens(Schema):
    """Null where no job reported usage (imported outputs, a server that reports none)."""

    input: int | None
    output: int | None


class TokenTotals(Schema):
    a: Tokens
    b: Tokens


class CompareTasks(Schema):
    compared: int
    prompt_changed: int = Field(description="Left out: the task's prompt or reference changed between the runs.")
    only_a: int
    only_b: int
    changed_output: int


class CompareSummary(Schema):
    checks: list[CheckSummary]
    checks_left_out: list[str] = Field(description="Checks only one run ran, or ran with other settings.")
    verdicts: list[VerdictSummary]
    humans: VerdictCounts = Field(description="Reviewers' current verdicts, counted (not tested).")
    cost_usd: SideTotals = Field(description="Over the tasks compared.")
    tokens: TokenTotals
    tasks: CompareTasks


class RowCheck(Schema):
    check: str
    a: bool | None
    b: bool | None
    change: Literal["regression", "fix"] | None


class RowVerdict(Schema):
    by: str
    judge_run: int
    outcome: Literal["a", "b", "tie", "both_bad"]


class RowReviewer(Schema):
    reviewer: str
    outcome: Literal["a", "b", "tie", "both_bad"]


class RowDelta(Schema):
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    duration_s: float | None


class CompareRow(Schema):
    task: int
    title: str
    a: JobOut
    b: JobOut
    checks: list[RowCheck]
    changed_output: bool
    verdicts: list[RowVerdict]
    humans: VerdictCounts
    reviewers: list[RowReviewer] | None = Field(None, description="Staff only: each reviewer's verdict.")
    delta: RowDelta = Field(description="B minus A.")


class GateTest(Schema):
    kind: Literal["check", "judge"]
    name: str
    regressions: int
    fixes: int
    p_value: float
    p_holm: float = Field(description="p after Holm's step-down correction across every test of the comparison.")
    significant: bool = Field(description="More regressions than fixes and p_holm below alpha.")


class CompareGate(Schema):
    regressed: bool = Field(description="Some test is a significant regression: `runs compare` would exit 1.")
    alpha: float
    tests: list[GateTest]


class CompareOut(Schema):
    a: CompareRun
    b: CompareRun
    summary: CompareSummary
    gate: CompareGate
    rows: list[CompareRow]
    next: int | None
    count: int = Field(description="Rows matching the filters, all pages.")
