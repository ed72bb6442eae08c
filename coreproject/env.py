"""Typed reads of environment variables.

A bad value never raises here: it is recorded in ``ERRORS`` with the variable's
name and the default is used, so ``manage.py check`` (eval/checks.py) can report
every problem at once, naming the variable at fault.
"""

import ipaddress
import json
import os
import re

ERRORS: list[tuple[str, str]] = []

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name):
    value = os.environ.get(name)
    return None if value is None else value.strip()


def string(name, default=""):
    value = _raw(name)
    return default if value is None or value == "" else value


def boolean(name, default=False):
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    ERRORS.append((name, f"{name}={value!r} is not a boolean (use 1/0/true/false/yes/no)"))
    return default


def integer(name, default, *, minimum=None, maximum=None):
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        ERRORS.append((name, f"{name}={value!r} is not an integer"))
        return default
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        ERRORS.append((name, f"{name}={number} is out of range [{minimum}, {maximum}]"))
        return default
    return number


def number(name, default, *, minimum=None):
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        result = float(value)
    except ValueError:
        ERRORS.append((name, f"{name}={value!r} is not a number"))
        return default
    if minimum is not None and result < minimum:
        ERRORS.append((name, f"{name}={result} must be at least {minimum}"))
        return default
    return result


def worker_processes():
    """How many worker processes run_services.py starts. Read here for the settings and
    for run_services (which runs without Django), so both take the same bounds."""
    return integer("WORKER_PROCESSES", 1, minimum=0, maximum=64)


def worker_shutdown_grace_seconds():
    """How long a stopping worker lets its jobs finish (the settings; run_services adds its margin)."""
    return number("WORKER_SHUTDOWN_GRACE_SECONDS", 10, minimum=0)


def checked(read):
    """``read()``, and the messages of what it recorded in ERRORS (for a process
    that reports its own settings: run_services.py)."""
    before = len(ERRORS)
    value = read()
    return value, [message for _, message in ERRORS[before:]]


def items(name, default=()):
    value = _raw(name)
    if value is None or value == "":
        return list(default)
    return [part.strip() for part in value.split(",") if part.strip()]


def choice(name, default, choices):
    value = string(name, default)
    if value not in choices:
        ERRORS.append((name, f"{name}={value!r} must be one of {', '.join(choices)}"))
        return default
    return value


def rate(name, default):
    """Parse ``N/s``, ``N/m`` or ``N/h`` into (count, seconds)."""
    value = string(name, default)
    periods = {"s": 1, "m": 60, "h": 3600}
    try:
        count, period = value.split("/")
        parsed = (int(count), periods[period.strip().lower()[0]])
        if parsed[0] < 1:
            raise ValueError
        return parsed
    except (ValueError, KeyError, IndexError):
        ERRORS.append((name, f"{name}={value!r} must look like 30/m (count per s, m or h)"))
        count, period = default.split("/")
        return int(count), periods[period[0]]


def _valid_prices(table):
    return isinstance(table, dict) and all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in pair)
        for pair in table.values()
    )


def prices(name):
    """A JSON object of model-name prefix -> [USD per million input tokens, per
    million output], e.g. {"claude-sonnet-4": [3, 15]}; {} when unset."""
    value = _raw(name)
    if not value:
        return {}
    try:
        table = json.loads(value)
    except ValueError:
        ERRORS.append((name, f"{name} is not valid JSON"))
        return {}
    valid = _valid_prices(table)
    if not valid:
        ERRORS.append(
            (
                name,
                f'{name} must map model-name prefixes to [input, output] USD per million, e.g. {{"claude-x": [3, 15]}}',
            )
        )
        return {}
    return {prefix: (str(pair[0]), str(pair[1])) for prefix, pair in table.items()}


def networks(name, default):
    """Comma-separated addresses or networks (``10.0.0.0/8``), or ``*`` for any,
    as ``ipaddress`` networks; gunicorn's syntax for FORWARDED_ALLOW_IPS."""
    entries = items(name, default.split(","))
    if "*" in entries:
        return [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    parsed = []
    for entry in entries:
        try:
            parsed.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            ERRORS.append((name, f"{name} entry {entry!r} is not an IP address or network"))
    return parsed


_ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_RESERVED_PROVIDERS = {"anthropic", "gemini", "echo", "openai", "imported"}
_ENDPOINT_KEYS = {"base_url", "api_key_env", "models", "label", "max_concurrency", "prices"}


def _endpoint_problem(name, spec):
    """What is wrong with one OPENAI_COMPATIBLE_ENDPOINTS entry, or None."""
    if not _ENDPOINT_NAME.match(name) or name in _RESERVED_PROVIDERS:
        return f"{name!r} is not a free provider name (a-z, 0-9, - and _; not a built-in provider)"
    if not isinstance(spec, dict):
        return f"{name!r} must be an object"
    unknown = sorted(set(spec) - _ENDPOINT_KEYS)
    if unknown:
        return f"{name!r} has unknown keys: {', '.join(unknown)}"
    url = spec.get("base_url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        return f"{name!r} needs base_url, an http(s) URL"
    models = spec.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m.strip() for m in models):
        return f"{name!r} needs models, a non-empty list of model names"
    if not isinstance(spec.get("api_key_env", ""), str) or not isinstance(spec.get("label", ""), str):
        return f"{name!r}: api_key_env and label are strings"
    concurrency = spec.get("max_concurrency", 50)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 1000:
        return f"{name!r}: max_concurrency is an integer from 1 to 1000"
    return None


def endpoints(name):
    """OPENAI_COMPATIBLE_ENDPOINTS: a JSON object of provider name -> {"base_url", "api_key_env"?,
    "models": [...], "label"?, "max_concurrency"?, "prices"?: {prefix: [in, out]}}; {} when unset.
    The key itself stays in the variable ``api_key_env`` names (read where the call is made)."""
    value = _raw(name)
    if not value:
        return {}
    try:
        table = json.loads(value)
    except ValueError:
        ERRORS.append((name, f"{name} is not valid JSON"))
        return {}
    if not isinstance(table, dict):
        ERRORS.append((name, f"{name} must be a JSON object of provider name -> endpoint"))
        return {}
    result = {}
    for provider, spec in table.items():
        problem = _endpoint_problem(provider, spec)
        if problem is None:
            problem, prices_table = _endpoint_prices(spec.get("prices"))
        if problem:
            ERRORS.append((name, f"{name}: {problem}"))
            continue
        result[provider] = {
            "base_url": spec["base_url"].rstrip("/"),
            "api_key_env": spec.get("api_key_env", ""),
            "models": [m.strip() for m in spec["models"]],
            "label": spec.get("label") or provider,
            "max_concurrency": spec.get("max_concurrency", 50),
            "prices": prices_table,
        }
    return result


def _endpoint_prices(table):
    if table is None:
        return None, {}
    valid = _valid_prices(table)
    if not valid:
        return "prices must map model-name prefixes to [input, output] USD per million", {}
    return None, {prefix: (str(pair[0]), str(pair[1])) for prefix, pair in table.items()}
