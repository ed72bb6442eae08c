"""Start-up validation of settings (``manage.py check``), naming the variable at fault."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def environment_check(app_configs=None, **kwargs):
    messages = [Error(text, hint=f"Fix or unset {name}.", id="eval.E001") for name, text in settings.ENV_ERRORS]
    for variable in ("ANTHROPIC_MODELS", "GEMINI_MODELS"):
        for entry in getattr(settings, variable):
            _, _, limit = entry.partition(":")
            if limit and not limit.strip().isdigit():
                messages.append(Error(f"{variable} entry {entry!r}: max tokens must be a number", id="eval.E002"))
    if settings.JOB_TRANSPORT == "pubsub" and not settings.PUBSUB_PROJECT_ID:
        messages.append(Error("JOB_TRANSPORT=pubsub needs PUBSUB_PROJECT_ID", id="eval.E003"))
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
