"""What every provider implements. Providers know nothing of the database:
the worker hands them a request and a callback for streamed text.

A provider's facts (name, label, models, limits, prices) live in its
:mod:`eval.providers.catalogue` entry, which imports no SDK; a provider
class adds the SDK client and the call."""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from eval.providers import pricing
from eval.providers.catalogue import ModelInfo, ProviderEntry, parse_models

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "ModelInfo",
    "Provider",
    "TextCallback",
    "joined_system",
    "parse_models",
    "split_conversation",
]


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    prompt: str
    max_tokens: int
    system: str = ""
    temperature: float | None = None
    # The conversation, system apart: ((role, content), ...) with roles "user" and
    # "assistant", the last one "user". Empty: one user turn holding ``prompt``.
    messages: tuple[tuple[str, str], ...] = ()
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def turns(self) -> tuple[tuple[str, str], ...]:
        """The conversation to send (system apart)."""
        return self.messages or (("user", self.prompt),)


def split_conversation(messages) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A task's conversation (``[{"role", "content"}]``, as stored) as
    (system text, turns) for a GenerationRequest: the system turn apart."""
    if not messages:
        return "", ()
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    turns = tuple((m["role"], m["content"]) for m in messages if m["role"] != "system")
    return system, turns


def joined_system(*parts) -> str:
    """System texts in order (a conversation's, then the job's own), blank-line separated."""
    return "\n\n".join(part for part in parts if part)


@dataclass
class GenerationResult:
    text: str
    stop_reason: str
    input_tokens: int | None = None
    output_tokens: int | None = None


# on_text(delta, output_tokens_so_far): called for every streamed chunk.
TextCallback = Callable[[str, int], None]


class Provider:
    """An SDK-backed provider; everything but the call comes from ``entry``."""

    entry: ProviderEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def demo(self) -> bool:
        return self.entry.demo

    @property
    def max_temperature(self) -> float:
        return self.entry.max_temperature

    @property
    def prices(self) -> dict[str, tuple[str, str]]:
        return self.entry.prices

    @property
    def max_concurrency(self) -> int:
        return self.entry.max_concurrency

    def models(self) -> list[ModelInfo]:
        return self.entry.models()

    def model(self, name) -> ModelInfo | None:
        return self.entry.model(name)

    def is_configured(self) -> bool:
        return self.entry.is_configured()

    def cost(self, model, input_tokens, output_tokens) -> Decimal | None:
        return pricing.cost(self.entry, model, input_tokens, output_tokens)

    def expected_tokens(self, request: GenerationRequest) -> int:
        """How long the answer will likely be, for progress a person can read:
        the model's typical length when the catalogue knows one, else max tokens."""
        info = self.model(request.model)
        typical = info.typical_tokens if info is not None else None
        return min(request.max_tokens, typical) if typical else request.max_tokens

    async def stream(self, request: GenerationRequest, on_text: TextCallback) -> GenerationResult:
        raise NotImplementedError

    async def prepare(self):
        """Called once when a worker starts (on its event loop): build the SDK
        client now, so the first jobs do not wait for imports and set-up."""

    async def aclose(self):
        """Release SDK clients (the worker calls this on shutdown)."""
