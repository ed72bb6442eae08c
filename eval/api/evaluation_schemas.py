"""Shapes of the evaluation endpoints: judgements, drafts, blind pairs."""

from typing import Any, Literal

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field

from eval.api.schemas import DATE_TIME, MAX_NOTES_CHARS, MESSAGES_DOC, Body, MessageOut
from eval.models import Judgement

Verdict = Literal[tuple(Judgement.Verdict.values)]
Side = Literal["left", "right", "tie", "both_bad"]


class JudgementIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "score", "jobs": ["<job id>"], "answers": {"quality": 4}},
                {"kind": "pairwise", "jobs": ["<job id>", "<job id>"], "verdict": "a"},
            ]
        }
    )

    kind: Literal[tuple(Judgement.Kind.values)]
    jobs: list[str] = Field(min_length=1, max_length=2, description="One job (score) or two (pairwise) of the task.")
    verdict: Verdict | None = Field(None, description="pairwise: a, b (the first or second job), tie, both_bad.")
    answers: dict[str, Any] | None = Field(None, description="Answers to the task's rubric, by question key.")
    notes: str | None = Field(None, max_length=MAX_NOTES_CHARS)


class RubricRef(Schema):
    id: int
    name: str
    version: int


class JudgeOut(Schema):
    provider: str
    model: str
    prompt_version: str


class JudgementOut(Schema):
    id: int
    kind: str
    task: int
    jobs: list[str]
    verdict: Verdict | None
    answers: dict[str, Any]
    notes: str
    blind: bool
    shown_left: str | None
    stale: bool = Field(description="Judged against a prompt or reference that has changed since.")
    withdrawn: bool
    rubric: RubricRef
    reviewer: str | None
    judge_job: str | None
    judge: JudgeOut | None = Field(description="An LLM judge's provider, model and prompt version (null for a person).")
    supersedes: int | None
    created_at: str = Field(json_schema_extra=DATE_TIME)


class JudgementList(Schema):
    judgements: list[JudgementOut]


class AllJudgements(Schema):
    all: bool = Field(False, description="Staff: everyone's current judgements, not only yours.")


class DraftOut(Schema):
    task: int
    data: dict[str, Any] | None
    updated_at: str | None = Field(json_schema_extra=DATE_TIME)


class Question(Schema):
    key: str
    label: str
    type: str
    scale: list[int] | None = None
    options: list[str] | None = None
    required: bool | None = None


class RubricOut(Schema):
    id: int
    name: str
    version: int
    guidelines: str
    questions: list[Question]


class PairTask(Schema):
    title: str
    prompt: str
    reference: str
    messages: list[MessageOut] | None = Field(None, description=MESSAGES_DOC)


class PairOutput(Schema):
    output: str


class PairOut(Schema):
    pair: str = Field(description="An opaque, single-use token for this pair (yours only).")
    task: PairTask
    left: PairOutput
    right: PairOutput
    rubric: RubricOut
    remaining: int = Field(description="Pairs left for you, this one included.")


class PairFilters(Schema):
    source: str = Field("", description="Only tasks of this source.")
    runs: str = Field("", description="Two run ids, comma-separated: one job from each (when runs exist).")


class PairVerdict(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"verdict": "left", "notes": "Left is shorter."}]})

    verdict: Side
    answers: dict[str, Any] | None = None
    notes: str | None = Field(None, max_length=MAX_NOTES_CHARS)


class RevealedModel(Schema):
    provider: str
    model: str


class Revealed(Schema):
    left: RevealedModel
    right: RevealedModel


class PairJudgementOut(JudgementOut):
    revealed: Revealed = Field(description="The models behind each side, now that the verdict is in.")


class DraftIn(BaseModel):
    """Any JSON object (the page's unsaved review form), up to 512 KB. A plain
    pydantic model: ninja's Schema would drop the keys it does not declare."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"rating": 3, "notes": "half done"}]})
