"""Shapes of the run endpoints (``/api/runs``, ``/api/budget``)."""

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from eval.api.schemas import DATE_TIME, TASK_ID_RE, Body, BodyId, Cursor, ErrorDetail, JobParams
from eval.models import Run, Task
from eval.providers import pricing
from eval.storable import BIGINT_MAX

CHECK_TYPES = Literal["exact", "contains", "regex", "json_valid"]
MAX_SELECTED_IDS = 100_000


def _largest_amount(field):
    """The largest dollar amount the column holds (12 digits, 6 after the point: 999,999.999999)."""
    digits, places = field.max_digits, field.decimal_places
    return float(10 ** (digits - places) - 10**-places)


MAX_USD = _largest_amount(Run._meta.get_field("max_cost_usd"))


def usd(description):
    """A dollar amount a request may send: 0 up to what the database column holds."""
    return Field(None, ge=0, le=MAX_USD, allow_inf_nan=False, description=description)


def _canonical_run_id(value):
    if isinstance(value, str) and not TASK_ID_RE.match(value):
        raise PydanticCustomError("run_id", "not a run id")
    return value


RunId = Annotated[
    int,
    BeforeValidator(_canonical_run_id),
    Field(ge=1),
    WithJsonSchema({"type": "integer", "minimum": 1, "description": "A run's id (a positive integer)."}),
]


class RunTasks(Body):
    source: str | None = Field(None, description="Only tasks synced from this source.")
    status: Literal[tuple(Task.Status.values)] | None = Field(None, description="Only tasks with this status.")
    ids: list[BodyId] | None = Field(
        None,
        max_length=MAX_SELECTED_IDS,
        description="Exactly these task ids (also tasks gone from their source); otherwise tasks still in it.",
    )
    limit: int | None = Field(None, ge=1, le=BIGINT_MAX, description="At most this many tasks, lowest ids first.")


class RunJudge(Body):
    rubric: BodyId | None = Field(None, description="A rubric id; the default rubric when left out.")
    compare: list[BodyId] | None = Field(None, min_length=2, max_length=2, description="Two runs to compare.")
    score: BodyId | None = Field(None, description="A run whose outputs are scored.")
    swap: bool | None = Field(None, description="Judge each pair twice, in both orders.")


class RunCheck(Body):
    type: CHECK_TYPES
    pattern: str | None = Field(None, description="The regular expression of a regex check.")


class RunCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "echo over open tasks", "provider": "echo", "model": "echo", "tasks": {"status": "open"}},
                {"name": "weekly", "provider": "echo", "model": "echo", "schedule": "0 6 * * 1"},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    provider: str = Field(description="A provider of GET /api/models (the judge's, for a judge run).")
    model: str
    params: JobParams | None = None
    tasks: RunTasks | None = Field(None, description="The task selection, evaluated when the run is launched.")
    schedule: str | None = Field(None, description="A cron expression (five fields, in TIME_ZONE).")
    max_cost_usd: float | None = usd("A launch estimated above this is refused.")
    kind: Literal[Run.Kind.GENERATE.value, Run.Kind.JUDGE.value] | None = Field(
        None, description="generate (default) or judge; imported runs come from dataset uploads."
    )
    judge: RunJudge | None = None
    checks: list[RunCheck] | None = Field(None, description="Automatic checks of each output against its reference.")
    template: int | None = Field(None, description="A prompt template (GET /api/templates); none: each task as it is.")
    confirm_cost_usd: float | None = usd(
        "Confirms an estimate above BULK_CONFIRM_COST_USD: send at least the estimate."
    )
    dry_run: bool | None = Field(
        None, description="true: create nothing; answer 200 with what launching it now would cost at most."
    )


class RunFilters(Schema):
    after: Cursor = Field(None, description="The `next` cursor of the previous page.")


class LaunchOptions(Schema):
    confirm_cost_usd: float | None = usd("Confirms an estimate above BULK_CONFIRM_COST_USD.")


class RubricRef(Schema):
    id: int
    name: str
    version: int


class RunJudgeOut(Schema):
    rubric: RubricRef | None
    compare: list[int] | None
    score: int | None
    swap: bool


class RunCheckOut(Schema):
    type: str
    pattern: str | None = None
    passed: int
    failed: int


class RunFailure(Schema):
    job: str = Field(json_schema_extra={"format": "uuid"})
    task: int
    code: str
    message: str


class RunCounts(Schema):
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class RunTotals(Schema):
    jobs: int = Field(description="All the run's jobs.")
    live: int = Field(description="Jobs still to end (queued or running).")
    ended: int = Field(description="Jobs that ended (succeeded, failed or cancelled).")


class RunOut(Schema):
    id: int
    name: str
    kind: str
    provider: str
    model: str
    params: dict[str, Any]
    tasks: dict[str, Any] = Field(description="The task selection as asked.")
    status: Literal[tuple(Run.Status.values)]
    counts: RunCounts = Field(description="Jobs per status.")
    totals: RunTotals
    progress: int = Field(description="Ended jobs over all jobs, 0-100.")
    estimated_cost_usd: float | None = Field(
        description=f"At launch: ceil(prompt characters / {pricing.CHARS_PER_TOKEN}) input tokens per task at the "
        "input price, plus max_tokens at the output price (an upper bound on the output side)."
    )
    cost_usd: float | None = Field(
        description="What its jobs have cost so far; null while none of them has a known cost "
        "(a model with no price, imported outputs)."
    )
    max_cost_usd: float | None
    schedule: str | None
    next_run_at: str | None = Field(json_schema_extra=DATE_TIME)
    parent: int | None
    created_by: str | None
    created_at: str = Field(json_schema_extra=DATE_TIME)
    launched_at: str | None = Field(json_schema_extra=DATE_TIME)
    finished_at: str | None = Field(json_schema_extra=DATE_TIME)
    checks: list[RunCheckOut]
    judge: RunJudgeOut | None
    failures: list[RunFailure] = Field(description="The latest failed jobs with their errors.")
    refused_reason: str | None = Field(description="Why the last firing of its schedule was refused.")
    dataset_version: int | None = Field(
        None, description="The version of its dataset when made (null: its selection names no uploaded dataset)."
    )
    dataset_changed: bool = Field(False, description="Its dataset has a newer version since.")
    template: int | None = Field(None, description="The prompt template its jobs were rendered with.")
    template_name: str | None = Field(None, description='The template as "name vN".')
    baseline: bool = Field(False, description="The baseline of its dataset (POST /api/runs/<id>/baseline).")
    regression: str | None = Field(
        None, description="A schedule's firing: the significant regressions found against the baseline when it ended."
    )


class RunPage(Schema):
    runs: list[RunOut]
    next: int | None


class CostErrorDetail(ErrorDetail):
    estimated_cost_usd: float | None = Field(None, description="confirm_cost, budget_exceeded: the estimate.")


class CostError(Schema):
    error: CostErrorDetail


class BudgetOut(Schema):
    day: str = Field(json_schema_extra={"format": "date"})
    reserved_usd: float = Field(
        description="What your spends committed today: the estimates of what has not ended, the cost of what has."
    )
    spent_usd: float = Field(description="What your jobs created today have cost so far.")
    budget_usd: float | None = Field(description="USER_DAILY_BUDGET_USD; null when budgets are off.")
    left_usd: float | None = Field(description="What you may still reserve today; null when budgets are off.")
