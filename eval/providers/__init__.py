"""Provider registry: one instance (and so one SDK client) per provider per
process. SDK modules are imported only when their provider is used."""

import importlib
import threading

from django.conf import settings

_CLASSES = {
    "echo": "eval.providers.echo.EchoProvider",
    "anthropic": "eval.providers.anthropic.AnthropicProvider",
    "gemini": "eval.providers.gemini.GeminiProvider",
}
_instances = {}
_lock = threading.Lock()


def _configured_names():
    names = []
    if settings.ANTHROPIC_API_KEY:
        names.append("anthropic")
    if settings.GEMINI_API_KEY:
        names.append("gemini")
    if settings.ECHO_ENABLED or not names:
        names.append("echo")
    return names


def get_provider(name):
    """The provider called ``name`` if it is configured here, else None."""
    if name not in _CLASSES or name not in _configured_names():
        return None
    with _lock:
        if name not in _instances:
            module_path, _, class_name = _CLASSES[name].rpartition(".")
            _instances[name] = getattr(importlib.import_module(module_path), class_name)()
        return _instances[name]


def available_providers():
    return [get_provider(name) for name in _configured_names()]


def reset():
    """Forget instances (tests change settings between cases)."""
    with _lock:
        _instances.clear()
