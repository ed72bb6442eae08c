"""The provider catalogue (what each provider offers, without its SDK) and the job
validation that reads it; a web process creating a job never loads an SDK."""

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from eval.jobs.errors import InvalidJob
from eval.jobs.validation import clean_job_request
from eval.providers import catalogue, pricing
from eval.providers.catalogue import ModelInfo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def keys(settings):
    """Both real providers configured, with small model lists."""
    settings.ANTHROPIC_API_KEY = "test-anthropic-key"
    settings.ANTHROPIC_MODELS = ["claude-test-1:1000", "claude-test-2"]
    settings.GEMINI_API_KEY = "test-gemini-key"
    settings.GEMINI_MODELS = ["gemini-test:2048:300"]
    settings.ECHO_ENABLED = True
    return settings


# --- which providers are configured ----------------------------------------------------------


@pytest.mark.parametrize(
    ("anthropic_key", "gemini_key", "echo_enabled", "names"),
    [
        ("", "", False, ["echo"]),  # nothing else: the demo stays, whatever ECHO_ENABLED says
        ("", "", True, ["echo"]),
        ("k", "", False, ["anthropic"]),
        ("", "k", False, ["gemini"]),
        ("k", "k", False, ["anthropic", "gemini"]),
        ("k", "k", True, ["anthropic", "gemini", "echo"]),
    ],
)
def test_it_lists_the_configured_providers(settings, anthropic_key, gemini_key, echo_enabled, names):
    settings.ANTHROPIC_API_KEY = anthropic_key
    settings.GEMINI_API_KEY = gemini_key
    settings.ECHO_ENABLED = echo_enabled

    assert [entry.name for entry in catalogue.configured()] == names
    for name in ("anthropic", "gemini", "echo"):
        assert (catalogue.get(name) is not None) is (name in names)


def test_it_knows_no_other_provider(keys):
    assert catalogue.get("openai") is None
    assert catalogue.get("") is None


def test_it_describes_each_provider(keys):
    anthropic, gemini, echo = catalogue.configured()

    assert (anthropic.name, anthropic.label, anthropic.demo, anthropic.max_temperature) == (
        "anthropic",
        "Anthropic Claude",
        False,
        1.0,
    )
    assert (gemini.name, gemini.label, gemini.demo, gemini.max_temperature) == ("gemini", "Google Gemini", False, 2.0)
    assert (echo.name, echo.label, echo.demo, echo.max_temperature) == ("echo", "Echo (offline demo)", True, 2.0)


# --- models, limits and prices -----------------------------------------------------------------


def test_models_come_from_settings(keys):
    assert catalogue.get("anthropic").models() == [
        ModelInfo("claude-test-1", 1000),
        ModelInfo("claude-test-2", 8192),  # no limit given: the default
    ]
    assert catalogue.get("gemini").models() == [ModelInfo("gemini-test", 2048, typical_tokens=300)]
    assert [m.name for m in catalogue.get("echo").models()] == ["echo", "echo-brief", "echo-reverse", "echo-judge"]
    assert catalogue.get("anthropic").model("claude-test-2").max_tokens == 8192
    assert catalogue.get("anthropic").model("gemini-test") is None


def test_max_concurrency_comes_from_settings(keys):
    keys.ANTHROPIC_MAX_CONCURRENCY = 7
    keys.GEMINI_MAX_CONCURRENCY = 9

    assert [entry.max_concurrency for entry in catalogue.configured()] == [7, 9, 1000]


@pytest.mark.parametrize(
    ("provider", "model", "input_tokens", "output_tokens", "cost"),
    [
        ("anthropic", "claude-sonnet-4-5", 1_000_000, 1_000_000, Decimal("18")),
        # The first matching prefix wins: opus-4-5 has its own price, other opus-4 models another.
        ("anthropic", "claude-opus-4-5-20251101", 1_000_000, 0, Decimal("5")),
        ("anthropic", "claude-opus-4-1", 1_000_000, 0, Decimal("15")),
        ("anthropic", "claude-3-5-haiku-latest", 1_000_000, 1_000_000, Decimal("4.8")),
        ("anthropic", "claude-haiku-4-5", 1234, 567, Decimal("0.004069")),  # micro-dollars
        ("anthropic", "claude-haiku-4-5", None, None, Decimal("0")),
        ("anthropic", "unknown-model", 10, 10, None),
        ("gemini", "gemini-2.5-flash-lite", 1_000_000, 1_000_000, Decimal("0.5")),
        ("gemini", "gemini-2.5-flash", 1_000_000, 1_000_000, Decimal("2.8")),
        ("gemini", "gemini-2.5-pro", 1_000_000, 1_000_000, Decimal("11.25")),
        ("gemini", "claude-sonnet-4-5", 10, 10, None),
        ("echo", "echo", 1_000_000, 1_000_000, Decimal("0")),
    ],
)
def test_cost(keys, provider, model, input_tokens, output_tokens, cost):
    assert pricing.cost(catalogue.get(provider), model, input_tokens, output_tokens) == cost


def test_prices_are_per_million_tokens_by_prefix(keys):
    assert catalogue.get("anthropic").prices["claude-sonnet-4"] == ("3", "15")
    assert catalogue.get("gemini").prices["gemini-2.5-pro"] == ("1.25", "10")
    assert catalogue.get("echo").prices == {}


# --- validating a job request against the catalogue ---------------------------------------------


def task(prompt="Say hello"):
    return SimpleNamespace(prompt=prompt, messages=None)


@pytest.mark.parametrize(
    ("provider", "model", "params", "field", "message"),
    [
        (None, "echo", None, "provider", "provider is required"),
        ("", "echo", None, "provider", "provider is required"),
        ("nope", "echo", None, "provider", "unknown or unconfigured provider 'nope'"),
        ("echo", None, None, "model", "model is required"),
        (
            "echo",
            "gpt-0",
            None,
            "model",
            "unknown model 'gpt-0' for echo (choose from echo, echo-brief, echo-reverse, echo-judge)",
        ),
        (
            "anthropic",
            "claude-x",
            None,
            "model",
            "unknown model 'claude-x' for anthropic (choose from claude-test-1, claude-test-2)",
        ),
        ("echo", "echo", [], "params", "params must be an object"),
        ("echo", "echo", {"top_k": 3, "top_a": 1}, "params", "unknown params: top_a, top_k"),
        ("echo", "echo", {"max_tokens": 0}, "params.max_tokens", "max_tokens must be an integer from 1 to 4096"),
        ("echo", "echo", {"max_tokens": 4097}, "params.max_tokens", "max_tokens must be an integer from 1 to 4096"),
        ("echo", "echo", {"max_tokens": "12"}, "params.max_tokens", "max_tokens must be an integer from 1 to 4096"),
        ("echo", "echo", {"max_tokens": True}, "params.max_tokens", "max_tokens must be an integer from 1 to 4096"),
        (
            "anthropic",
            "claude-test-1",
            {"max_tokens": 1001},
            "params.max_tokens",
            "max_tokens must be an integer from 1 to 1000",
        ),
        ("echo", "echo", {"temperature": 9}, "params.temperature", "temperature must be a number from 0 to 2.0"),
        ("echo", "echo", {"temperature": "hot"}, "params.temperature", "temperature must be a number from 0 to 2.0"),
        ("echo", "echo", {"temperature": True}, "params.temperature", "temperature must be a number from 0 to 2.0"),
        ("echo", "echo", {"temperature": -0.1}, "params.temperature", "temperature must be a number from 0 to 2.0"),
        (
            "anthropic",
            "claude-test-1",
            {"temperature": 1.5},
            "params.temperature",
            "temperature must be a number from 0 to 1.0",
        ),
        ("echo", "echo", {"system": 5}, "params.system", "system must be a string"),
    ],
)
def test_validation_names_the_field_and_the_rule(keys, provider, model, params, field, message):
    with pytest.raises(InvalidJob) as caught:
        clean_job_request(task=task(), provider=provider, model=model, params=params)

    assert caught.value.field == field
    assert str(caught.value) == message


def test_validation_checks_the_prompt(keys):
    with pytest.raises(InvalidJob) as caught:
        clean_job_request(task=task("   "), provider="echo", model="echo", params=None)
    assert (caught.value.field, str(caught.value)) == ("prompt", "the task's prompt is empty")

    keys.MAX_PROMPT_CHARS = 10
    clean_job_request(task=task("x" * 10), provider="echo", model="echo", params=None)
    with pytest.raises(InvalidJob) as caught:
        # The system prompt counts too.
        clean_job_request(task=task("x" * 6), provider="echo", model="echo", params={"system": "12345"})
    assert (caught.value.field, str(caught.value)) == ("prompt", "the prompt is longer than MAX_PROMPT_CHARS (10)")


@pytest.mark.parametrize(
    ("provider", "model", "params", "cleaned"),
    [
        ("echo", "echo", None, {"max_tokens": 1024}),
        ("anthropic", "claude-test-1", {}, {"max_tokens": 1000}),  # the default, within the model's limit
        (
            "gemini",
            "gemini-test",
            {"temperature": 2, "system": "Be brief."},
            {
                "max_tokens": 1024,
                "temperature": 2.0,
                "system": "Be brief.",
            },
        ),
        ("echo", "echo", {"max_tokens": 5, "temperature": None, "system": ""}, {"max_tokens": 5}),
    ],
)
def test_validation_returns_the_cleaned_params(keys, provider, model, params, cleaned):
    result = clean_job_request(task=task(), provider=provider, model=model, params=params)

    assert result == cleaned
    assert type(result.get("temperature", 0.0)) is float


# --- a web process never loads an SDK -----------------------------------------------------------

WEB_REQUEST = textwrap.dedent(
    """
    import sys
    import types

    import django

    django.setup()
    from django.conf import settings
    from django.urls import get_resolver

    get_resolver().url_patterns  # the whole URLconf: every view module, as a web process has
    from eval.jobs.validation import clean_job_request
    from eval.providers import catalogue, pricing

    assert [entry.name for entry in catalogue.configured()] == ["anthropic", "gemini", "echo"]
    task = types.SimpleNamespace(prompt="Say hello", messages=None)
    for entry in catalogue.configured():
        model = entry.models()[0].name
        clean_job_request(task=task, provider=entry.name, model=model, params={"temperature": 0.5})
        pricing.cost(entry, model, 10, 10)
    loaded = sorted(
        name for name in sys.modules
        if name.partition(".")[0] == "anthropic"
        or name == "google.genai" or name.startswith("google.genai.")
        or name in ("eval.providers.anthropic", "eval.providers.gemini")
    )
    print("loaded:", loaded)
    """
)


def test_validating_a_job_in_a_web_process_imports_no_sdk():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "GEMINI_API_KEY": "test-gemini-key",
        "ECHO_ENABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", WEB_REQUEST], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"
