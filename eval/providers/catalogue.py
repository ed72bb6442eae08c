"""What each provider offers, without its SDK: names, labels, models, limits and prices.

Web processes validate and describe jobs from here and never import an SDK
(``anthropic``, ``google.genai``); only the worker builds SDK-backed providers
(``eval.providers.get_provider``), and those read their facts from these entries.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings


@dataclass(frozen=True)
class ModelInfo:
    name: str
    max_tokens: int
    # A usual answer length, when smaller than max_tokens: progress is measured against it.
    typical_tokens: int | None = None


def _number(text):
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_models(entries, default_max_tokens=8192):
    """``name``, ``name:max_tokens`` or ``name:max_tokens:typical_tokens`` items
    (settings ``*_MODELS``) -> ModelInfo list."""
    models = []
    for entry in entries:
        name, _, rest = entry.partition(":")
        limit, _, typical = rest.partition(":")
        models.append(ModelInfo(name.strip(), _number(limit) or default_max_tokens, _number(typical)))
    return models


# eq=False: entries are singletons, compared and hashed by identity.
@dataclass(frozen=True, eq=False)
class ProviderEntry:
    name: str
    label: str
    # How error messages name the provider ("Anthropic rate limit reached").
    short_label: str = ""
    demo: bool = False
    max_temperature: float = 1.0
    # Settings names: the API key that configures the provider, its model list, its concurrency.
    key_setting: str = ""
    models_setting: str = ""
    concurrency_setting: str = ""
    # Models when there is no models setting (the echo demo).
    fixed_models: tuple[ModelInfo, ...] = ()
    # USD per million tokens (input, output) by model-name prefix; the first matching
    # prefix wins, so more specific names come first. Unknown model -> no cost.
    prices: dict[str, tuple[str, str]] = field(default_factory=dict)
    # A flat cost for every call (the echo demo costs nothing), instead of prices.
    free: bool = False

    def models(self) -> list[ModelInfo]:
        if self.models_setting:
            return parse_models(getattr(settings, self.models_setting))
        return list(self.fixed_models)

    def model(self, name) -> ModelInfo | None:
        return next((m for m in self.models() if m.name == name), None)

    def is_configured(self) -> bool:
        return not self.key_setting or bool(getattr(settings, self.key_setting))

    @property
    def max_concurrency(self) -> int:
        return getattr(settings, self.concurrency_setting) if self.concurrency_setting else 1000

    def price(self, model) -> tuple[Decimal, Decimal] | None:
        """USD per million tokens (input, output) of ``model``: MODEL_PRICES first
        (an operator's override, longest matching prefix), then the built-in table
        (first matching prefix); None when unknown. The echo demo is free unless
        MODEL_PRICES prices it (tests and demos of cost control)."""
        overrides = [prefix for prefix in getattr(settings, "MODEL_PRICES", {}) if model.startswith(prefix)]
        if overrides:
            per_in, per_out = settings.MODEL_PRICES[max(overrides, key=len)]
            return Decimal(str(per_in)), Decimal(str(per_out))
        if self.free:
            return Decimal("0"), Decimal("0")
        for prefix, (per_in, per_out) in self.prices.items():
            if model.startswith(prefix):
                return Decimal(per_in), Decimal(per_out)
        return None

    def cost(self, model, input_tokens, output_tokens) -> Decimal | None:
        price = self.price(model)
        if price is None:
            return None
        per_in, per_out = price
        total = per_in * (input_tokens or 0) + per_out * (output_tokens or 0)
        return (total / Decimal(1_000_000)).quantize(Decimal("0.000001"))


ANTHROPIC = ProviderEntry(
    name="anthropic",
    label="Anthropic Claude",
    short_label="Anthropic",
    max_temperature=1.0,
    key_setting="ANTHROPIC_API_KEY",
    models_setting="ANTHROPIC_MODELS",
    concurrency_setting="ANTHROPIC_MAX_CONCURRENCY",
    # Rough public list prices.
    prices={
        "claude-opus-4-5": ("5", "25"),
        "claude-opus-4": ("15", "75"),
        "claude-3-opus": ("15", "75"),
        "claude-sonnet-4": ("3", "15"),
        "claude-3-7-sonnet": ("3", "15"),
        "claude-3-5-sonnet": ("3", "15"),
        "claude-haiku-4-5": ("1", "5"),
        "claude-3-5-haiku": ("0.80", "4"),
        "claude-3-haiku": ("0.25", "1.25"),
    },
)

GEMINI = ProviderEntry(
    name="gemini",
    label="Google Gemini",
    short_label="Gemini",
    max_temperature=2.0,
    key_setting="GEMINI_API_KEY",
    models_setting="GEMINI_MODELS",
    concurrency_setting="GEMINI_MAX_CONCURRENCY",
    # Rough public list prices, short prompts.
    prices={
        "gemini-3-pro": ("2", "12"),
        "gemini-2.5-pro": ("1.25", "10"),
        "gemini-2.5-flash-lite": ("0.10", "0.40"),
        "gemini-2.5-flash": ("0.30", "2.50"),
        "gemini-2.0-flash-lite": ("0.075", "0.30"),
        "gemini-2.0-flash": ("0.10", "0.40"),
    },
)

ECHO = ProviderEntry(
    name="echo",
    label="Echo (offline demo)",
    short_label="Echo",
    demo=True,
    max_temperature=2.0,
    # Demo models whose answers differ deterministically, so outputs can be
    # compared (and pairs judged) with no key: eval/providers/echo.py.
    # echo-judge answers judge prompts with valid judge JSON (eval/providers/echo.py).
    fixed_models=(
        ModelInfo("echo", 4096),
        ModelInfo("echo-brief", 4096),
        ModelInfo("echo-reverse", 4096),
        ModelInfo("echo-judge", 4096),
    ),
    free=True,
)

ENTRIES = {entry.name: entry for entry in (ANTHROPIC, GEMINI, ECHO)}


def configured() -> list[ProviderEntry]:
    """The providers configured in this process: each one whose API key is set, and
    the echo demo when ECHO_ENABLED or when no real provider is configured."""
    entries = [entry for entry in (ANTHROPIC, GEMINI) if entry.is_configured()]
    if settings.ECHO_ENABLED or not entries:
        entries.append(ECHO)
    return entries


def get(name) -> ProviderEntry | None:
    """The entry called ``name`` if that provider is configured here, else None."""
    return next((entry for entry in configured() if entry.name == name), None)
