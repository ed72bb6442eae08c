"""Shapes of ``GET /api/results`` (eval/evaluation/results.py computes it)."""

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from eval.api.schemas import TASK_ID_RE

MAX_RUNS = 50
JudgedBy = Literal["human", "judge"]


def _run_ids(value):
    if value is None or value == "":
        return None
    text = ",".join(value) if isinstance(value, list) else str(value)
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or len(parts) > MAX_RUNS:
        raise PydanticCustomError("runs", "give 1 to {limit} comma-separated run ids", {"limit": MAX_RUNS})
    bad = next((part for part in parts if not TASK_ID_RE.match(part)), None)
    if bad is not None:
        raise PydanticCustomError("runs", "{bad} is not a run id", {"bad": repr(bad[:30])})
    return [int(part) for part in dict.fromkeys(parts)]


def _flag(value):
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true", True):
        return True
    raise PydanticCustomError("flag", "must be 1 or 0")


class ResultFilters(Schema):
    source: str | None = Field(None, description="Only tasks of this source.")
    runs: Annotated[list[int] | None, BeforeValidator(_run_ids)] = Field(
        None, description="Comma-separated run ids: one row per run (else one per provider and model)."
    )
    include_stale: Annotated[bool, BeforeValidator(_flag)] = Field(
        False, description="1: count judgements whose task's prompt or reference changed since too."
    )
    group_by: Literal["model", "template"] | None = Field(
        None, description="template: one row per provider, model and prompt template version (not with runs)."
    )


class Interval(Schema):
    low: float | None
    high: float | None


class QuestionMean(Interval):
    key: str
    n: int
    mean: float | None = Field(description="The mean answer; low/high: Student's t 95% interval.")


class Rating(Interval):
    elo: float = Field(description="Bradley-Terry on the Elo scale; low/high: 95% bootstrap interval.")
    group: int | None = Field(
        None,
        description="Set when some rows were never compared, directly or through others: ratings of "
        "different groups are on separate scales and say nothing about each other.",
    )


class Figures(Schema):
    judged_by: JudgedBy
    judge: str | None = Field(description="The LLM judge as provider/model; null for humans.")
    blind: bool
    judgements: int = Field(description="Score judgements of the row's outputs plus pairwise verdicts on them.")
    scores: int
    questions: list[QuestionMean]
    games: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    rating: Rating | None


class RateFigure(Interval):
    rate: float | None = Field(description="low/high: Wilson 95% interval.")


class CheckFigure(RateFigure):
    check: str
    passed: int
    n: int


class RunRef(Schema):
    id: int
    name: str
    kind: str


class TemplateRef(Schema):
    id: int
    name: str = Field(description='"name vN"')


class ResultRow(Schema):
    key: str = Field(description="The run id, or provider/model.")
    provider: str
    model: str
    run: RunRef | None
    template: TemplateRef | None = Field(None, description="With group_by=template: the template version, or null.")
    figures: list[Figures] = Field(description="One per segment, in the order of `segments`.")
    checks: list[CheckFigure]


class WinRate(Schema):
    keys: list[str] = Field(description="Row keys: the order of both axes.")
    rates: list[list[float | None]] = Field(description="rates[i][j]: row i's share against row j (ties half).")
    games: list[list[int]]


class Segment(Schema):
    judged_by: JudgedBy
    judge: str | None
    blind: bool
    win_rate: WinRate


class PositionBias(RateFigure):
    judged_by: JudgedBy
    judge: str | None
    left_wins: int
    n: int


class Kappa(Schema):
    kappa: float | None
    n: int


class HumanAgreement(Kappa):
    reviewer_pairs: int


class Swap(Schema):
    pairs: int
    consistent: int
    inconsistent: int


class JudgeAgreement(Schema):
    judge: str
    vs_human_majority: Kappa
    swap: Swap


class Agreement(Schema):
    humans: HumanAgreement
    judges: list[JudgeAgreement]


class LeftSide(RateFigure):
    left_wins: int
    n: int


class ReviewerFigures(Schema):
    reviewer: str
    judgements: int
    left_side: LeftSide
    agreement: Kappa


class ResultsOut(Schema):
    group_by: Literal["run", "model", "template"]
    source: str | None
    runs: list[int] | None
    include_stale: bool
    judgements: int
    methods: dict[str, Any] = Field(description="How each figure and interval is computed.")
    questions: list[str] = Field(description="The rating questions whose means are given.")
    rows: list[ResultRow]
    segments: list[Segment] = Field(description="Who judged (humans; each LLM judge) and blind or not.")
    position_bias: list[PositionBias]
    agreement: Agreement
    reviewers: list[ReviewerFigures]
