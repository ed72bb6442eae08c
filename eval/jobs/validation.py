"""Checks a job request before anything is written. Reads the provider catalogue
only: a web process validating a job never imports a provider SDK."""

from django.conf import settings

from eval.jobs.errors import InvalidJob
from eval.providers import catalogue

ALLOWED_PARAMS = {"max_tokens", "temperature", "system"}
DEFAULT_MAX_TOKENS = 1024


def clean_job_request(*, task, provider, model, params):
    """Return the cleaned params or raise InvalidJob."""
    entry = _provider(provider)
    info = _model(entry, model)
    params = _params(params)
    cleaned = {"max_tokens": _max_tokens(params, info)}
    temperature = _temperature(params, entry)
    if temperature is not None:
        cleaned["temperature"] = temperature
    system = _system(params)
    if system:
        cleaned["system"] = system
    _check_prompt(task, system)
    return cleaned


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, int | float)


def _provider(name):
    if not isinstance(name, str) or not name:
        raise InvalidJob("provider is required", field="provider")
    entry = catalogue.get(name)
    if entry is None:
        raise InvalidJob(f"unknown or unconfigured provider {name!r}", field="provider")
    return entry


def _model(entry, name):
    if not isinstance(name, str) or not name:
        raise InvalidJob("model is required", field="model")
    info = entry.model(name)
    if info is None:
        names = ", ".join(m.name for m in entry.models())
        raise InvalidJob(f"unknown model {name!r} for {entry.name} (choose from {names})", field="model")
    return info


def _params(params):
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise InvalidJob("params must be an object", field="params")
    unknown = sorted(set(params) - ALLOWED_PARAMS)
    if unknown:
        raise InvalidJob(f"unknown params: {', '.join(unknown)}", field="params")
    return params


def _max_tokens(params, info):
    max_tokens = params.get("max_tokens", min(DEFAULT_MAX_TOKENS, info.max_tokens))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= info.max_tokens:
        raise InvalidJob(f"max_tokens must be an integer from 1 to {info.max_tokens}", field="params.max_tokens")
    return max_tokens


def _temperature(params, entry):
    """The temperature as a float, or None when not given."""
    temperature = params.get("temperature")
    if temperature is None:
        return None
    if not _is_number(temperature) or not 0 <= temperature <= entry.max_temperature:
        raise InvalidJob(f"temperature must be a number from 0 to {entry.max_temperature}", field="params.temperature")
    return float(temperature)


def _system(params):
    """The system prompt, or "" when not given (an empty or falsy value counts as not given)."""
    system = params.get("system")
    if not system:
        return ""
    if not isinstance(system, str):
        raise InvalidJob("system must be a string", field="params.system")
    return system


def _check_prompt(task, system):
    prompt = task.prompt or ""
    if not prompt.strip():
        raise InvalidJob("the task's prompt is empty", field="prompt")
    # A conversation sends every turn (its prompt is its last user turn).
    sent = sum(len(turn.get("content") or "") for turn in task.messages) if task.messages else len(prompt)
    if sent + len(system) > settings.MAX_PROMPT_CHARS:
        raise InvalidJob(f"the prompt is longer than MAX_PROMPT_CHARS ({settings.MAX_PROMPT_CHARS})", field="prompt")
