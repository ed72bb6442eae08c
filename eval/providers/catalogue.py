"""What each provider offers, without its SDK: names, labels, models, limits and prices.

Web processes validate and describe jobs from here and never import an SDK
(``anthropic``, ``google.genai``); only the worker builds SDK-backed providers
(``eval.providers.get_provider``), and those read their facts from these entries.
"""

import os
from dataclasses import dataclass, field

from django.conf import settings

# A job's max_tokens when its request sets none (or the model's maximum, if lower).
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class ModelInfo:
    name: str
    max_tokens: int
    # A usual answer length, when smaller than max_tokens: progress is measured against it.
    typical_tokens: int | None = None
    # A model that only judges (its answers are judge JSON): offered as the judge of a
    # judge run, never as a model that generates (the review page's run buttons, a
    # generate run, POST /api/tasks/<id>/jobs).
    judge_only: bool = False

    @property
    def default_max_tokens(self):
        return min(DEFAULT_MAX_TOKENS, self.max_tokens)


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
    # Read by eval/providers/pricing.py only.
    prices: dict[str, tuple[str, str]] = field(default_factory=dict)
    # A flat cost for every call (the echo demo costs nothing), instead of prices.
    free: bool = False
    # The class that makes the call (eval/providers/__init__.py), when not the one named
    # like the provider: every OpenAI-compatible endpoint is an `openai` provider.
    sdk: str = ""
    # Params a job may set besides max_tokens (DESIGN: one a provider cannot take is a 400),
    # and per model-name prefix those a model refuses (OpenAI's reasoning models).
    params: frozenset = frozenset({"temperature", "system"})
    refused_params: tuple[tuple[str, frozenset], ...] = ()
    # An endpoint's own facts, for the entries built from OPENAI_COMPATIBLE_ENDPOINTS:
    # its URL, the environment variable holding its key ("" = no key) and its concurrency.
    base_url: str = ""
    api_key_env: str = ""
    concurrency: int = 0

    def refuses(self, model) -> frozenset:
        """The params ``model`` cannot take with this provider."""
        refused = frozenset(param for param in ALL_PARAMS if param not in self.params)
        for prefix, names in self.refused_params:
            if model.startswith(prefix):
                refused |= names
        return refused

    @property
    def api_key(self) -> str:
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return getattr(settings, self.key_setting, "") if self.key_setting else ""

    def models(self) -> list[ModelInfo]:
        if self.models_setting:
            return parse_models(getattr(settings, self.models_setting))
        return list(self.fixed_models)

    def model(self, name) -> ModelInfo | None:
        return next((m for m in self.models() if m.name == name), None)

    def is_configured(self) -> bool:
        if self.api_key_env:
            return bool(self.api_key)
        return not self.key_setting or bool(getattr(settings, self.key_setting))

    @property
    def max_concurrency(self) -> int:
        if self.concurrency:
            return self.concurrency
        return getattr(settings, self.concurrency_setting) if self.concurrency_setting else 1000


# Every param a job may set besides max_tokens (eval/jobs/validation.py).
ALL_PARAMS = ("temperature", "system", "top_p", "stop", "seed")
# OpenAI's reasoning models take max_completion_tokens and no sampling params.
OPENAI_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

ANTHROPIC = ProviderEntry(
    name="anthropic",
    label="Anthropic Claude",
    short_label="Anthropic",
    max_temperature=1.0,
    key_setting="ANTHROPIC_API_KEY",
    models_setting="ANTHROPIC_MODELS",
    concurrency_setting="ANTHROPIC_MAX_CONCURRENCY",
    params=frozenset({"temperature", "system", "top_p", "stop"}),  # the Messages API has no seed
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
    params=frozenset(ALL_PARAMS),
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
        ModelInfo("echo-judge", 4096, judge_only=True),
    ),
    free=True,
    # A demo: it takes every param and its answers do not depend on sampling.
    params=frozenset(ALL_PARAMS),
)

OPENAI = ProviderEntry(
    name="openai",
    label="OpenAI",
    short_label="OpenAI",
    max_temperature=2.0,
    key_setting="OPENAI_API_KEY",
    models_setting="OPENAI_MODELS",
    concurrency_setting="OPENAI_MAX_CONCURRENCY",
    params=frozenset(ALL_PARAMS),
    refused_params=tuple((prefix, frozenset({"temperature", "top_p", "stop"})) for prefix in OPENAI_REASONING_PREFIXES),
    # Rough public list prices.
    prices={
        "gpt-5-nano": ("0.05", "0.40"),
        "gpt-5-mini": ("0.25", "2"),
        "gpt-5": ("1.25", "10"),
        "gpt-4.1-nano": ("0.10", "0.40"),
        "gpt-4.1-mini": ("0.40", "1.60"),
        "gpt-4.1": ("2", "8"),
        "gpt-4o-mini": ("0.15", "0.60"),
        "gpt-4o": ("2.50", "10"),
        "o4-mini": ("1.10", "4.40"),
        "o3": ("2", "8"),
    },
)

ENTRIES = {entry.name: entry for entry in (ANTHROPIC, GEMINI, ECHO, OPENAI)}
_endpoint_entries = {}  # the OPENAI_COMPATIBLE_ENDPOINTS value -> its entries (one identity per setting)


def _endpoint_entry(name, spec):
    return ProviderEntry(
        name=name,
        label=spec["label"],
        short_label=spec["label"],
        max_temperature=2.0,
        fixed_models=tuple(parse_models(spec["models"])),
        prices=spec["prices"],
        sdk="openai",
        params=frozenset(ALL_PARAMS),
        refused_params=OPENAI.refused_params,
        base_url=spec["base_url"],
        api_key_env=spec["api_key_env"],
        concurrency=spec["max_concurrency"],
    )


def endpoints() -> list[ProviderEntry]:
    """One entry per OPENAI_COMPATIBLE_ENDPOINTS provider (configured or not)."""
    table = getattr(settings, "OPENAI_COMPATIBLE_ENDPOINTS", {}) or {}
    key = repr(sorted(table.items()))
    if key not in _endpoint_entries:
        _endpoint_entries.clear()
        _endpoint_entries[key] = [_endpoint_entry(name, spec) for name, spec in table.items()]
    return _endpoint_entries[key]


def configured() -> list[ProviderEntry]:
    """The providers configured in this process: each one whose API key is set, each
    OpenAI-compatible endpoint (whose key, if it names one, is set), and the echo demo
    when ECHO_ENABLED or when no real provider is configured."""
    entries = [entry for entry in (ANTHROPIC, GEMINI, OPENAI) if entry.is_configured()]
    entries += [entry for entry in endpoints() if entry.is_configured()]
    if settings.ECHO_ENABLED or not entries:
        entries.append(ECHO)
    return entries


def get(name) -> ProviderEntry | None:
    """The entry called ``name`` if that provider is configured here, else None."""
    return next((entry for entry in configured() if entry.name == name), None)
