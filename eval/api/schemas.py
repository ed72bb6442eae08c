"""The API's shapes as pydantic models: what requests may carry (validated by
django-ninja before a view runs) and what answers look like (the OpenAPI
schema at /api/openapi.json is generated from these).

Request bodies are strict (JSON types as sent: ``"5"`` is not a rating) and
refuse unknown fields. Query values arrive as text and are parsed here. Path
ids are checked here too; a malformed one is a 404 (eval/api/app.py). Checks
that need the database or the provider catalogue (does the model exist, is
max_tokens under its limit) stay in the job engine, which raises JobError
with the field at fault.
"""

import re
from typing import Annotated, Any, Literal

from annotated_types import Ge
from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

from eval.api.errors import STATUS
from eval.jobs import states
from eval.models import Alert, Review, Task
from eval.providers import catalogue
from eval.storable import BIGINT_MAX

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UUID_RE = re.compile(UUID_PATTERN)
TASK_ID_RE = re.compile(r"^[1-9][0-9]{0,17}$")
MAX_IDS = 100
MAX_NOTES_CHARS = Review.MAX_NOTES_CHARS
MAX_SEARCH_CHARS = 500  # percent-encoded, still inside gunicorn's request line (deploy/gunicorn.conf.py)
MAX_IDEMPOTENCY_KEY = 200
NO_NUL = r"^[^\x00]*$"  # a header stored in a text column (PostgreSQL text cannot hold NUL)
# substr() takes a 32-bit position, and the output's rest starts at output_from + 1.
MAX_OUTPUT_FROM = 2**31 - 2

DATE_TIME = {"format": "date-time"}


# --- values -----------------------------------------------------------------------------


def _canonical_task_id(value):
    """Only the canonical spelling of a positive integer: "01", "1.0", "-1" are not task ids."""
    if isinstance(value, str) and not TASK_ID_RE.match(value):
        raise PydanticCustomError("task_id", "not a task id")
    return value


def _digits(value):
    """Query integers: digits only ("" = not given)."""
    if value == "" or value is None:
        return None
    if isinstance(value, str) and not value.isdigit():
        raise PydanticCustomError("digits", "must be a whole number of at least 0")
    return value


def _blank_is_none(value):
    return None if value == "" else value


def _job_id_list(value):
    text = ",".join(value) if isinstance(value, list) else str(value)  # ?ids=a,b or ?ids=a&ids=b
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise PydanticCustomError("ids", "none given (send comma-separated job ids)")
    if len(ids) > MAX_IDS:
        raise PydanticCustomError("ids", "at most {limit} ids", {"limit": MAX_IDS})
    bad = next((job_id for job_id in ids if not UUID_RE.match(job_id)), None)
    if bad is not None:
        raise PydanticCustomError("ids", "malformed job id {bad}", {"bad": repr(bad[:50])})
    return list(dict.fromkeys(ids))


TaskId = Annotated[
    int,
    BeforeValidator(_canonical_task_id),
    Ge(1),
    WithJsonSchema({"type": "integer", "minimum": 1, "description": "A task's id (a positive integer)."}),
]
JobId = Annotated[
    str,
    Field(pattern=UUID_PATTERN, description="A job's id: a lowercase UUID.", json_schema_extra={"format": "uuid"}),
]
Cursor = Annotated[Annotated[int, Field(ge=0, le=BIGINT_MAX)] | None, BeforeValidator(_digits)]
# An id in a body: what a bigint primary key can hold.
BodyId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
_UUID = UUID_PATTERN.strip("^$")
JobIdList = Annotated[
    list[str],
    BeforeValidator(_job_id_list),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_UUID}(,{_UUID}){{0,{MAX_IDS - 1}}}$",
            "description": f"Comma-separated job ids, at most {MAX_IDS} (spaces and empty items are ignored).",
        }
    ),
]
JobStatus = Literal[states.ALL]


# --- requests ----------------------------------------------------------------------------


class Body(Schema):
    """A request body: strict JSON types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class JobParams(Body):
    max_tokens: int | None = Field(
        None,
        ge=1,
        le=BIGINT_MAX,
        description=f"1 to the model's maximum; default {catalogue.DEFAULT_MAX_TOKENS} (or less).",
    )
    temperature: float | None = Field(None, ge=0, description="0 to the provider's maximum.")
    system: str | None = Field(None, description="A system prompt.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling, where the provider takes it.")
    stop: list[str] | None = Field(None, max_length=4, description="Stop sequences (at most 4).")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="A sampling seed, where the provider takes it.")


class JobCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider": "echo", "model": "echo"}]})

    provider: str = Field(description="A provider of GET /api/models.")
    model: str = Field(description="One of that provider's models.")
    params: JobParams | None = None
    template: int | None = Field(None, description="A prompt template (GET /api/templates); none: the task as it is.")


class ReviewPut(Body):
    """The caller's whole review: fields left out become null."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"rating": 4, "notes": "B is clearer."}]})

    rating: int | None = Field(None, ge=1, le=5)
    notes: str | None = Field(None, max_length=MAX_NOTES_CHARS)
    preferred_job: Annotated[str, Field(pattern=UUID_PATTERN)] | None = Field(
        None, description="A job of this task, or null."
    )


class TaskFilters(Schema):
    status: Annotated[Literal[tuple(Task.Status.values)] | None, BeforeValidator(_blank_is_none)] = None
    q: str = Field("", max_length=MAX_SEARCH_CHARS, description="Text in the title, external id or prompt.")
    after: Cursor = Field(None, description="The `next` cursor of the previous page.")
    review: Annotated[Literal["needed", "mine", "stale"] | None, BeforeValidator(_blank_is_none)] = Field(
        None,
        description="needed: not reviewed by you; mine: reviewed by you; stale: your judgement predates "
        "a change of the task's prompt or reference.",
    )


class JobIds(Schema):
    ids: JobIdList


class OutputFrom(Schema):
    output_from: Annotated[Annotated[int, Field(ge=0, le=MAX_OUTPUT_FROM)] | None, BeforeValidator(_digits)] = Field(
        None, description="Start the output at this character (the rest of a cut output)."
    )


# --- answers -----------------------------------------------------------------------------


class ErrorDetail(Schema):
    code: Literal[tuple(STATUS)]
    message: str
    field: str | None = Field(None, description="The request field at fault (left out when none).")


class Error(Schema):
    error: ErrorDetail


class JobErrorOut(Schema):
    code: str
    message: str


class Usage(Schema):
    input_tokens: int | None
    output_tokens: int | None


class MessageOut(Schema):
    role: Literal["system", "user", "assistant"]
    content: str


MESSAGES_DOC = "The task's conversation (system turn first, the last turn user); null for a one-prompt task."


class JobOut(Schema):
    id: str = Field(json_schema_extra={"format": "uuid"})
    kind: str
    task: int
    provider: str
    model: str
    status: JobStatus
    progress: int
    message: str
    output: str
    output_truncated: bool
    error: JobErrorOut | None
    attempts: int
    usage: Usage
    cost_usd: float | None
    stop_reason: str | None
    cancel_requested: bool
    terminal: bool = Field(description="The job has ended and never changes again (succeeded, failed, cancelled).")
    can_cancel: bool
    can_retry: bool
    retry_of: str | None
    hidden: bool = Field(description="Hidden from pages, pairs and results (POST .../hide, .../unhide).")
    can_hide: bool
    params: dict[str, Any] = Field(
        description="max_tokens, temperature, system, top_p, stop, seed as the job ran them."
    )
    from_current_prompt: bool = Field(description="Made from the task's current prompt and reference.")
    messages: list[MessageOut] | None = Field(None, description=MESSAGES_DOC + " Generate jobs only.")
    template: int | None = Field(None, description="The prompt template that rendered what it sent.")
    template_name: str | None = Field(None, description='The template as "name vN".')
    messages_sent: list[MessageOut] | None = Field(
        None, description="Exactly what the provider received, system included (null for a judge job)."
    )
    created_by: str | None
    created_at: str = Field(json_schema_extra=DATE_TIME)
    started_at: str | None = Field(json_schema_extra=DATE_TIME)
    finished_at: str | None = Field(json_schema_extra=DATE_TIME)
    updated_at: str = Field(json_schema_extra=DATE_TIME)


JobCounts = create_model("JobCounts", __base__=Schema, **{status: (int, ...) for status in states.ALL})


class TaskOut(Schema):
    id: int
    external_id: str
    title: str
    status: str
    jobs: JobCounts
    reviewed_by_me: bool
    messages: list[MessageOut] | None = Field(None, description=MESSAGES_DOC)


class TaskPage(Schema):
    tasks: list[TaskOut]
    next: int | None = Field(description="The cursor of the next page (`after=`), null on the last.")
    count: int = Field(description="Tasks matching the filter, all pages.")


class PollOut(Schema):
    task: int
    jobs: list[JobOut]
    all_terminal: bool


class JobList(Schema):
    jobs: list[JobOut]


class ReviewOut(Schema):
    task: int
    rating: int | None
    notes: str | None
    preferred_job: str | None
    created_at: str | None = Field(json_schema_extra=DATE_TIME)
    updated_at: str | None = Field(json_schema_extra=DATE_TIME)


class ModelOut(Schema):
    name: str
    max_tokens: int
    judge_only: bool = Field(False, description="Only the judge of a judge run (POST /api/runs kind judge).")


class ProviderOut(Schema):
    name: str
    label: str
    demo: bool
    models: list[ModelOut]


class ModelCatalogue(Schema):
    providers: list[ProviderOut]


class WorkerOut(Schema):
    worker_id: str
    hostname: str
    pid: int
    last_seen: str = Field(json_schema_extra=DATE_TIME)
    jobs_done: int
    jobs_failed: int
    in_flight: int
    online: bool


class FailureOut(Schema):
    id: str
    task: int
    provider: str
    model: str
    error: JobErrorOut
    finished_at: str | None = Field(json_schema_extra=DATE_TIME)


class AlertOut(Schema):
    rule: Literal[tuple(Alert.Rule.values)]
    message: str
    since: str = Field(json_schema_extra=DATE_TIME)


class StatusOut(Schema):
    counts: JobCounts
    oldest_queued_age_s: float | None
    workers: list[WorkerOut]
    recent_failures: list[FailureOut]
    alerts: list[AlertOut] = Field(description='The active alerts (DESIGN "Alerts"), oldest first.')
