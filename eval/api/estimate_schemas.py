"""The answers of the estimate endpoints: a dry run of creating a job
(``POST /api/tasks/<id>/jobs/estimate``) or a run (``POST /api/runs`` with
``dry_run``). Every figure comes from eval/providers/pricing.py; pages only
format them."""

from ninja import Schema
from pydantic import Field

from eval.providers import pricing


class PriceOut(Schema):
    input: float = Field(description="USD per million input tokens.")
    output: float = Field(description="USD per million output tokens.")


class EstimateOut(Schema):
    """At most what the calls cost: each prompt as ceil(characters / chars_per_token)
    input tokens at the input price, plus max_tokens per call at the output price."""

    usd: float = Field(description="The estimate in USD (0 when no price is known).")
    calls: int
    prompt_chars: int = Field(description="The characters of every prompt sent, system prompts included.")
    input_tokens: int
    output_tokens: int = Field(description="max_tokens times the calls: an upper bound.")
    chars_per_token: int = Field(description=f"The estimate's rule ({pricing.CHARS_PER_TOKEN}).")
    price: PriceOut | None = Field(description="The model's price; null when none is known (counted as free).")


class JobEstimateOut(Schema):
    estimate: EstimateOut


class RunEstimateOut(Schema):
    dry_run: bool = Field(description="Always true: nothing was created.")
    estimate: EstimateOut
    estimated_cost_usd: float = Field(description="estimate.usd: what the launch would be checked against.")
    tasks: int | None = Field(description="The tasks it would run (null for a judge run).")
    skipped: int = Field(description="Selected tasks it could not run (empty or too long a prompt).")
