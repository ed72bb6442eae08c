"""What a launch is expected to cost, before anything is queued (DESIGN
"Evaluation", cost control).

Prices come from the provider catalogue (USD per million tokens; MODEL_PRICES
overrides the built-in table). Prompt tokens are counted as ceil(characters /
4) of the prompt plus the system prompt: no tokenizer is loaded in a web
process, and English text runs at about four characters a token. The output
is bounded by max_tokens, so the estimate is an upper bound on the output
side: it is what the run can cost at most, not what it usually costs.
"""

from decimal import Decimal

from django.db.models import Sum

from eval.models import LLMJob
from eval.providers.catalogue import CHARS_PER_TOKEN, MICRO_USD, prompt_tokens

__all__ = ["CENT", "CHARS_PER_TOKEN", "actual", "estimate", "prompt_tokens"]
CENT = MICRO_USD


def estimate(entry, model, prompt_chars, max_tokens):
    """USD for one call per prompt length in ``prompt_chars`` (each with up to
    ``max_tokens`` of output; the catalogue's arithmetic). A model without a known
    price costs 0 here (say so where it is shown; while a budget is set the launch
    is refused first: eval/jobs/quota.py). Returns a Decimal rounded to 1e-6."""
    value = entry.estimate(model, prompt_chars, max_tokens)
    return Decimal("0") if value is None else value


def actual(run_id):
    """What a run's jobs have cost so far (the worker writes each job's cost)."""
    value = LLMJob.objects.filter(run_id=run_id).aggregate(total=Sum("cost_usd"))["total"]
    return (value or Decimal("0")).quantize(CENT)
