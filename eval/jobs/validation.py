"""Checks a job request before anything is written."""

from django.conf import settings

from eval.jobs.errors import InvalidJob
from eval.providers import get_provider

ALLOWED_PARAMS = {"max_tokens", "temperature", "system"}
DEFAULT_MAX_TOKENS = 1024


def clean_job_request(*, task, provider, model, params):
    """Return the cleaned params or raise InvalidJob."""
    if not isinstance(provider, str) or not provider:
        raise InvalidJob("provider is required", field="provider")
    backend = get_provider(provider)
    if backend is None:
        raise InvalidJob(f"unknown or unconfigured provider {provider!r}", field="provider")
    if not isinstance(model, str) or not model:
        raise InvalidJob("model is required", field="model")
    info = backend.model(model)
    if info is None:
        names = ", ".join(m.name for m in backend.models())
        raise InvalidJob(f"unknown model {model!r} for {provider} (choose from {names})", field="model")

    params = {} if params is None else params
    if not isinstance(params, dict):
        raise InvalidJob("params must be an object", field="params")
    unknown = sorted(set(params) - ALLOWED_PARAMS)
    if unknown:
        raise InvalidJob(f"unknown params: {', '.join(unknown)}", field="params")

    cleaned = {}
    max_tokens = params.get("max_tokens", min(DEFAULT_MAX_TOKENS, info.max_tokens))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= info.max_tokens:
        raise InvalidJob(f"max_tokens must be an integer from 1 to {info.max_tokens}", field="params.max_tokens")
    cleaned["max_tokens"] = max_tokens
    if "temperature" in params and params["temperature"] is not None:
        temperature = params["temperature"]
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0 <= temperature <= backend.max_temperature
        ):
            raise InvalidJob(
                f"temperature must be a number from 0 to {backend.max_temperature}", field="params.temperature"
            )
        cleaned["temperature"] = float(temperature)
    if params.get("system"):
        if not isinstance(params["system"], str):
            raise InvalidJob("system must be a string", field="params.system")
        cleaned["system"] = params["system"]

    prompt = task.prompt or ""
    if not prompt.strip():
        raise InvalidJob("the task's prompt is empty", field="prompt")
    if len(prompt) + len(cleaned.get("system", "")) > settings.MAX_PROMPT_CHARS:
        raise InvalidJob(f"the prompt is longer than MAX_PROMPT_CHARS ({settings.MAX_PROMPT_CHARS})", field="prompt")
    return cleaned
