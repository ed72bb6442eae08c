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

CHARS_PER_TOKEN = 4
CENT = Decimal("0.000001")


def prompt_tokens(chars):
    """ceil(chars / 4): the documented count of a prompt's tokens."""
    return -(-int(chars) // CHARS_PER_TOKEN)


def estimate(entry, model, prompt_chars, max_tokens):
    """USD for one call per prompt length in ``prompt_chars`` (each with up to
    ``max_tokens`` of output). A model without a known price costs 0 here
    (say so where it is shown). Returns a Decimal rounded to 1e-6."""
    price = entry.price(model)
    if price is None:
        return Decimal("0")
    per_in, per_out = price
    count = 0
    tokens_in = 0
    for chars in prompt_chars:
        tokens_in += prompt_tokens(chars)
        count += 1
    total = per_in * tokens_in + per_out * max_tokens * count
    return (total / Decimal(1_000_000)).quantize(CENT)


def actual(run_id):
    """What a run's jobs have cost so far (the worker writes each job's cost)."""
    value = LLMJob.objects.filter(run_id=run_id).aggregate(total=Sum("cost_usd"))["total"]
    return (value or Decimal("0")).quantize(CENT)
