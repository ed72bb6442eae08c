"""Provider registry: one instance (and so one SDK client) per provider per
process. SDK modules are imported only when their provider is used; what a
provider offers (models, limits, prices) is in :mod:`eval.providers.catalogue`,
which web processes read instead."""

import importlib
import threading

from eval.providers import catalogue

_CLASSES = {
    "echo": "eval.providers.echo.EchoProvider",
    "anthropic": "eval.providers.anthropic.AnthropicProvider",
    "gemini": "eval.providers.gemini.GeminiProvider",
    # OpenAI and every OpenAI-compatible endpoint (one instance per endpoint, built from its entry).
    "openai": "eval.providers.openai.OpenAIProvider",
}
_instances = {}
_lock = threading.Lock()


def get_provider(name):
    """The provider called ``name`` if it is configured here, else None."""
    entry = catalogue.get(name)
    kind = entry and (entry.sdk or entry.name)
    if kind not in _CLASSES:
        return None
    with _lock:
        if name not in _instances:
            module_path, _, class_name = _CLASSES[kind].rpartition(".")
            cls = getattr(importlib.import_module(module_path), class_name)
            _instances[name] = cls(entry) if kind == "openai" else cls()
        return _instances[name]


def available_providers():
    return [get_provider(entry.name) for entry in catalogue.configured()]


def reset():
    """Forget instances (tests change settings between cases)."""
    with _lock:
        _instances.clear()
