"""What model calls cost: the one owner of prices and cost arithmetic, over
the one price table (each catalogue entry's ``prices``, USD per million tokens
by model-name prefix; MODEL_PRICES overrides it). One function per question:

- the price of a model: ``price(entry, model)`` (None when unknown);
- the estimate of a request, before anything is queued: ``estimate(entry,
  model, prompt_chars, max_tokens)``, for one job (the review page) or a run's
  every task (a launch, the runs page), through the API's estimate answers;
- the cost of a finished call: ``cost(entry, model, input_tokens, output_tokens)``
  (the worker writes it on the job; a run's cost is the sum of its jobs').

Prompt tokens are estimated as ceil(characters / CHARS_PER_TOKEN): no tokenizer
is loaded in a web process, and English text runs at about four characters a
token. The output is bounded by max_tokens, so an estimate is an upper bound on
the output side: what the calls can cost at most, not what they usually cost.
Pages only format what these answer.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

CHARS_PER_TOKEN = 4
PER = Decimal(1_000_000)  # prices are per million tokens
# Money is kept to the micro-dollar (LLMJob.cost_usd and Run's costs: 6 decimal places).
MICRODOLLAR = Decimal("0.000001")


@dataclass(frozen=True)
class Price:
    input: Decimal  # USD per million input tokens
    output: Decimal  # USD per million output tokens

    @property
    def free(self):
        return not (self.input or self.output)

    def as_json(self):
        return {"input": float(self.input), "output": float(self.output)}


@dataclass(frozen=True)
class Estimate:
    usd: Decimal
    calls: int
    prompt_chars: int
    input_tokens: int
    output_tokens: int
    price: Price | None  # None: no price is known, counted as free

    def as_json(self):
        return {
            "usd": float(self.usd),
            "calls": self.calls,
            "prompt_chars": self.prompt_chars,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "chars_per_token": CHARS_PER_TOKEN,
            "price": None if self.price is None else self.price.as_json(),
        }


NO_CALLS = Estimate(Decimal("0"), 0, 0, 0, 0, None)


def price(entry, model):
    """``model``'s Price: MODEL_PRICES first (an operator's override, longest
    matching prefix), then the entry's built-in table (first matching prefix);
    None when unknown. The echo demo is free unless MODEL_PRICES prices it
    (tests and demos of cost control)."""
    overrides = [prefix for prefix in getattr(settings, "MODEL_PRICES", {}) if model.startswith(prefix)]
    if overrides:
        per_in, per_out = settings.MODEL_PRICES[max(overrides, key=len)]
        return Price(Decimal(str(per_in)), Decimal(str(per_out)))
    if entry.free:
        return Price(Decimal("0"), Decimal("0"))
    for prefix, (per_in, per_out) in entry.prices.items():
        if model.startswith(prefix):
            return Price(Decimal(per_in), Decimal(per_out))
    return None


def usd(value):
    """A Decimal amount of dollars rounded to the micro-dollar."""
    return Decimal(value).quantize(MICRODOLLAR)


def prompt_tokens(chars):
    """ceil(chars / CHARS_PER_TOKEN): the documented count of a prompt's tokens."""
    return -(-int(chars) // CHARS_PER_TOKEN)


def _dollars(found, input_tokens, output_tokens):
    return usd((found.input * input_tokens + found.output * output_tokens) / PER)


def estimate(entry, model, prompt_chars, max_tokens):
    """At most what one call per prompt length in ``prompt_chars`` (an iterable
    of character counts, each call with up to ``max_tokens`` of output) costs.
    A model without a known price is counted as free (``price`` None says so)."""
    calls = chars = input_tokens = 0
    for length in prompt_chars:
        calls += 1
        chars += int(length)
        input_tokens += prompt_tokens(length)
    output_tokens = max_tokens * calls
    found = price(entry, model)
    total = Decimal("0") if found is None else _dollars(found, input_tokens, output_tokens)
    return Estimate(usd(total), calls, chars, input_tokens, output_tokens, found)


def cost(entry, model, input_tokens, output_tokens):
    """What a finished call cost (missing counts as 0 tokens), or None when no price is known."""
    found = price(entry, model)
    if found is None:
        return None
    return _dollars(found, input_tokens or 0, output_tokens or 0)
