"""Checks a job request before anything is written. Reads the provider catalogue
only: a web process validating a job never imports a provider SDK."""

from django.conf import settings

from eval.jobs.errors import InvalidJob
from eval.providers import catalogue

ALLOWED_PARAMS = {"max_tokens", "temperature", "system", "top_p", "stop", "seed"}
# At most this many stop sequences (OpenAI's limit, the smallest of the providers'), each
# of at most MAX_STOP_CHARS; a seed fits a signed 32-bit integer (Gemini's).
MAX_STOPS = 4
MAX_STOP_CHARS = 200
MAX_SEED = 2**31 - 1


def clean_job_request(*, task, provider, model, params, judge=False):
    """Return the cleaned params or raise InvalidJob. A judge-only model (the
    catalogue's ``judge_only``) is refused unless ``judge`` (a judge run's model)."""
    entry = _provider(provider)
    info = _model(entry, model)
    if info.judge_only and not judge:
        raise InvalidJob(f"{info.name} is a judge model: choose it as the judge of a judge run", field="model")
    params = _params(params)
    _check_taken(params, entry, info)
    cleaned = {"max_tokens": _max_tokens(params, info)}
    optional = {
        "temperature": _temperature(params, entry),
        "system": _system(params),
        "top_p": _top_p(params),
        "stop": _stop(params),
        "seed": _seed(params),
    }
    cleaned.update((name, value) for name, value in optional.items() if value not in (None, "", []))
    _check_prompt(task, cleaned.get("system", ""))
    return cleaned


def _check_taken(params, entry, info):
    """A param this provider (or this model) cannot take is refused, never dropped."""
    for name in sorted(entry.refuses(info.name)):
        if params.get(name) not in (None, "", []):
            raise InvalidJob(f"{entry.name} model {info.name} does not take {name}", field=f"params.{name}")


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
    max_tokens = params.get("max_tokens", info.default_max_tokens)
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


def _top_p(params):
    top_p = params.get("top_p")
    if top_p is None:
        return None
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise InvalidJob("top_p must be a number above 0 and at most 1", field="params.top_p")
    return float(top_p)


def _stop(params):
    """Stop sequences: a list of 1 to MAX_STOPS non-empty strings (a lone string counts as one)."""
    stop = params.get("stop")
    if stop is None:
        return []
    stop = [stop] if isinstance(stop, str) else stop
    valid = isinstance(stop, list) and len(stop) <= MAX_STOPS
    if not valid or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stop):
        raise InvalidJob(
            f"stop must be a list of at most {MAX_STOPS} non-empty strings of at most {MAX_STOP_CHARS} characters",
            field="params.stop",
        )
    return stop


def _seed(params):
    seed = params.get("seed")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidJob(f"seed must be an integer from 0 to {MAX_SEED}", field="params.seed")
    return seed


def _system(params):
    """The system prompt, or "" when not given (an empty or falsy value counts as not given)."""
    system = params.get("system")
    if not system:
        return ""
    if not isinstance(system, str):
        raise InvalidJob("system must be a string", field="params.system")
    return system


def prompt_chars(task, system=""):
    """The characters a job of ``task`` sends: a conversation sends every turn
    (its prompt is its last user turn), else the prompt; plus the system prompt."""
    sent = sum(len(turn.get("content") or "") for turn in task.messages) if task.messages else len(task.prompt or "")
    return sent + len(system)


def sent_chars(job):
    """What a new job sends, in characters: its rendered messages (a template's,
    a conversation's, system included), else its task's prompt and system prompt.
    Its estimate (pricing.estimate) and its budget reservation count these."""
    if job.messages_sent:
        return sum(len(message.get("content") or "") for message in job.messages_sent)
    return len(job.task.prompt or "") + len(job.params.get("system") or "")


def _check_prompt(task, system):
    prompt = task.prompt or ""
    if not prompt.strip():
        raise InvalidJob("the task's prompt is empty", field="prompt")
    if prompt_chars(task, system) > settings.MAX_PROMPT_CHARS:
        raise InvalidJob(f"the prompt is longer than MAX_PROMPT_CHARS ({settings.MAX_PROMPT_CHARS})", field="prompt")
