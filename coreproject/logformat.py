"""Log formatting and the filters every log line goes through.

* ``JsonFormatter``: one JSON object per line (``LOG_FORMAT=json``).
* ``JobContextFilter``: puts ``job_id`` and ``worker_id`` on every line logged
  while a job runs, from ``bind()`` (a context variable: each asyncio task
  keeps its own), so code deep inside a provider or an SDK need not pass
  ``extra=`` for the line to say which job it is about. The worker process
  also registers its id once (``set_process_worker_id``) so every line it
  logs, job or not, names it.
* ``RedactSecretsFilter``: replaces the values of ANTHROPIC_API_KEY,
  GEMINI_API_KEY, METRICS_TOKEN, DJANGO_SECRET_KEY, ALERT_WEBHOOK_URL,
  EMAIL_HOST_PASSWORD and the DATABASE_URL password, wherever they appear in
  a line (message, arguments, extra fields, traceback), with ``[REDACTED]``;
  also any ``scheme://user:password@`` URL and ``Authorization``/API-key
  headers. Both filters sit on the handler, so
  they see every record that reaches it, from any logger.
"""

import contextvars
import json
import logging
import os
import re
import traceback
from urllib.parse import urlsplit

from django.conf import settings

# Fields that callers pass with ``extra=`` and that belong on the line.
_EXTRA_FIELDS = ("job_id", "worker_id", "task_id", "provider", "model", "attempt", "status")

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("eval_log_context", default=None)
_process_worker_id = None


def bind(**fields):
    """Attach fields (job_id, worker_id, ...) to every line logged from the
    current context (this asyncio task or thread) on. Returns a token for
    ``unbind``; a task that ends needs no unbind (its context goes with it)."""
    current = _context.get() or {}
    values = {key: str(value) for key, value in fields.items() if value is not None}
    return _context.set({**current, **values})


def unbind(token):
    _context.reset(token)


def set_process_worker_id(worker_id):
    """The worker process's id, put on each of its lines that has none."""
    global _process_worker_id
    _process_worker_id = str(worker_id) if worker_id else None


class JobContextFilter(logging.Filter):
    def filter(self, record):
        bound = _context.get()
        if bound:
            for key, value in bound.items():
                if getattr(record, key, None) is None:
                    setattr(record, key, value)
        if _process_worker_id and getattr(record, "worker_id", None) is None:
            record.worker_id = _process_worker_id
        return True


# --- secrets ------------------------------------------------------------------------

SECRET_SETTINGS = (
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_API_KEY",
    "METRICS_TOKEN",
    "DJANGO_SECRET_KEY",
    "ALERT_WEBHOOK_URL",  # a Slack-style webhook URL is its own credential
    "EMAIL_HOST_PASSWORD",
)
REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words

_PATTERNS = (
    # scheme://user:password@host -> scheme://user:[REDACTED]@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.I), r"\g<keep>" + REDACTED),
    # Authorization: Bearer xxx / x-api-key: xxx / x-goog-api-key: xxx (headers dumped in debug lines)
    (
        re.compile(
            r"(?P<keep>\b(?:authorization|x-api-key|x-goog-api-key)['\"]?\s*[:=]\s*['\"]?(?:bearer\s+)?)"
            r"[^\s'\",}]+",
            re.I,
        ),
        r"\g<keep>" + REDACTED,
    ),
    # ?key=... in a URL (Google APIs accept the key as a query parameter)
    (re.compile(r"(?P<keep>[?&]key=)[^&\s'\"]+", re.I), r"\g<keep>" + REDACTED),
)


def _database_password(url):
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def secret_values():
    """The secret values in force now: from Django settings when configured,
    and from the environment (a process may log before settings load)."""
    values = set()
    for name in SECRET_SETTINGS:
        values.add(os.environ.get(name))
    values.add(_database_password(os.environ.get("DATABASE_URL", "")))
    try:
        if settings.configured:
            for name in SECRET_SETTINGS:
                values.add(getattr(settings, name, None))
            values.add(settings.SECRET_KEY)
            # Each OpenAI-compatible endpoint's key, in the variable its entry names.
            for endpoint in getattr(settings, "OPENAI_COMPATIBLE_ENDPOINTS", {}).values():
                values.add(os.environ.get(endpoint["api_key_env"]) if endpoint["api_key_env"] else None)
            values.add(_database_password(getattr(settings, "DATABASE_URL", "")))
            for database in settings.DATABASES.values():
                values.add(database.get("PASSWORD"))
    except Exception:  # settings half-loaded or broken: the environment still counts
        pass
    # Longest first, so a secret that contains another is replaced whole.
    return sorted((v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text, secrets=None):
    if not text:
        return text
    for secret in secret_values() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites the record in place: the message is formatted here (arguments
    included) and redacted, and so is the traceback text."""

    def filter(self, record):
        secrets = secret_values()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we have
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if isinstance(value, str):
                setattr(record, field, redact(value, secrets))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line)
