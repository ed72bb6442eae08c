"""Start-up validation of settings (``manage.py check``), naming the variable at fault."""

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.validators import validate_email


@register(Tags.compatibility)
def environment_check(app_configs=None, **kwargs):
    messages = [Error(text, hint=f"Fix or unset {name}.", id="eval.E001") for name, text in settings.ENV_ERRORS]
    for variable in ("ANTHROPIC_MODELS", "GEMINI_MODELS", "OPENAI_MODELS"):
        for entry in getattr(settings, variable):
            _, _, limit = entry.partition(":")
            if limit and not limit.strip().isdigit():
                messages.append(Error(f"{variable} entry {entry!r}: max tokens must be a number", id="eval.E002"))
    if settings.JOB_TRANSPORT == "pubsub" and not settings.PUBSUB_PROJECT_ID:
        messages.append(Error("JOB_TRANSPORT=pubsub needs PUBSUB_PROJECT_ID", id="eval.E003"))
    return messages + alert_settings_errors() + endpoint_warnings()


def endpoint_warnings():
    """An OpenAI-compatible endpoint whose key variable is empty is left out of the catalogue: say so."""
    return [
        Warning(
            f"OPENAI_COMPATIBLE_ENDPOINTS: provider {name!r} names api_key_env {spec['api_key_env']!r}, "
            "which is empty here: the provider is not offered",
            hint=f"Set {spec['api_key_env']} or remove api_key_env for a server that needs no key.",
            id="eval.W010",
        )
        for name, spec in settings.OPENAI_COMPATIBLE_ENDPOINTS.items()
        if spec["api_key_env"] and not os.environ.get(spec["api_key_env"])
    ]


def alert_settings_errors():
    """ALERT_* values env.py cannot judge alone. Never quotes ALERT_WEBHOOK_URL (a secret)."""
    messages = []
    if settings.ALERT_FAILURE_RATE > 1:
        messages.append(Error(f"ALERT_FAILURE_RATE={settings.ALERT_FAILURE_RATE} is a share: 0 to 1", id="eval.E020"))
    if settings.ALERT_WEBHOOK_URL:
        try:
            parts = urlsplit(settings.ALERT_WEBHOOK_URL)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            messages.append(Error("ALERT_WEBHOOK_URL must be an http(s) URL (value not shown)", id="eval.E021"))
    for address in settings.ALERT_EMAILS:
        try:
            validate_email(address)
        except ValidationError:
            messages.append(Error(f"ALERT_EMAILS: {address!r} is not an email address", id="eval.E022"))
    return messages


@register(Tags.security, deploy=True)
def secret_key_check(app_configs=None, **kwargs):
    if not settings.DEBUG and not settings.SECRET_KEY_FROM_ENV:
        return [
            Warning(
                "DJANGO_SECRET_KEY is not set: using a key generated in .local/, which other web VMs will not share.",
                id="eval.W001",
            )
        ]
    return []


@register(Tags.staticfiles, deploy=True)
def static_manifest_check(app_configs=None, **kwargs):
    """With DEBUG off, pages name their static files through collectstatic's
    manifest: without it every HTML page is a 500. (A deploy check: deploy.sh
    collects first; gunicorn's workers run it at start, deploy/gunicorn.conf.py.)"""
    storage = storages["staticfiles"]
    if settings.DEBUG or not isinstance(storage, ManifestFilesMixin):
        return []
    if storage.exists(storage.manifest_name):
        return []
    return [
        Error(
            f"DJANGO_DEBUG=0 and no static files manifest in {settings.STATIC_ROOT}: every HTML page would be a 500.",
            hint="Run `manage.py collectstatic --noinput` (deploy.sh and `make run` do).",
            id="eval.E040",
        )
    ]
