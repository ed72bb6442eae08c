"""What every provider implements. Providers know nothing of the database:
the worker hands them a request and a callback for streamed text."""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class ModelInfo:
    name: str
    max_tokens: int


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    prompt: str
    max_tokens: int
    system: str = ""
    temperature: float | None = None


@dataclass
class GenerationResult:
    text: str
    stop_reason: str
    input_tokens: int | None = None
    output_tokens: int | None = None


# on_text(delta, output_tokens_so_far): called for every streamed chunk.
TextCallback = Callable[[str, int], None]


def parse_models(entries, default_max_tokens=8192):
    """``name`` or ``name:max_tokens`` items (settings *_MODELS) -> ModelInfo list."""
    models = []
    for entry in entries:
        name, _, limit = entry.partition(":")
        models.append(ModelInfo(name.strip(), int(limit) if limit.strip().isdigit() else default_max_tokens))
    return models


class Provider:
    name = ""
    label = ""
    demo = False
    max_temperature = 1.0
    # USD per million tokens (input, output) by model-name prefix; unknown -> no cost.
    prices: dict[str, tuple[str, str]] = {}

    def models(self) -> list[ModelInfo]:
        raise NotImplementedError

    def is_configured(self) -> bool:
        return True

    @property
    def max_concurrency(self) -> int:
        return 1000

    def model(self, name) -> ModelInfo | None:
        return next((m for m in self.models() if m.name == name), None)

    async def stream(self, request: GenerationRequest, on_text: TextCallback) -> GenerationResult:
        raise NotImplementedError

    def cost(self, model, input_tokens, output_tokens) -> Decimal | None:
        for prefix, (per_in, per_out) in self.prices.items():
            if model.startswith(prefix):
                total = Decimal(per_in) * (input_tokens or 0) + Decimal(per_out) * (output_tokens or 0)
                return (total / Decimal(1_000_000)).quantize(Decimal("0.000001"))
        return None

    async def prepare(self):
        """Called once when a worker starts (on its event loop): build the SDK
        client now, so the first jobs do not wait for imports and set-up."""

    async def aclose(self):
        """Release SDK clients (the worker calls this on shutdown)."""
