"""OpenAI, and any server speaking its chat completions API (vLLM, Ollama, LM Studio...),
through the official openai SDK.

One instance per provider entry: ``openai`` (OPENAI_API_KEY) and each
OPENAI_COMPATIBLE_ENDPOINTS provider. The key and the URL are always passed
explicitly: left out, the SDK reads OPENAI_API_KEY and OPENAI_BASE_URL from the
environment and would send the OpenAI key to a self-hosted server. The SDK's own
retries are off (``max_retries=0``): the job lifecycle owns attempts and backoff.

As for Anthropic, the SDK builds, authenticates and sends the request and raises its
typed errors for HTTP failures; the streamed body is read raw by eval/providers/sse.py
(a pydantic model per chunk is most of the CPU a streamed token costs).
"""

import asyncio
from decimal import Decimal

import httpx2
import openai
import orjson
from django.conf import settings

from eval.providers import catalogue, http_errors, pricing, sse
from eval.providers.base import GenerationRequest, GenerationResult, Provider, TextCallback
from eval.providers.errors import ProviderError
from eval.providers.http import async_http_client

# A server that needs no key (Ollama, a local vLLM) still gets one: the SDK refuses to start without.
NO_KEY = "no-key"
# finish_reason values that mean the model (or the server's filter) would not answer.
_REFUSALS = {"content_filter"}
_NO_OPENAI_ACCOUNT = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}


def _max_tokens_field(entry, model):
    """OpenAI's own API takes ``max_completion_tokens`` (its reasoning models refuse
    ``max_tokens``); compatible servers know ``max_tokens``, unless the model is one of
    OpenAI's reasoning models served through a proxy."""
    if entry is catalogue.OPENAI or model.startswith(catalogue.OPENAI_REASONING_PREFIXES):
        return "max_completion_tokens"
    return "max_tokens"


def request_body(entry, request: GenerationRequest):
    """The chat completions request for ``request`` (what the SDK sends)."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [{"role": role, "content": content} for role, content in request.turns()]
    body = {
        "model": request.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        _max_tokens_field(entry, request.model): request.max_tokens,
    }
    optional = {"temperature": request.temperature, "top_p": request.top_p, "seed": request.seed}
    body.update((name, value) for name, value in optional.items() if value is not None)
    if request.stop:
        body["stop"] = list(request.stop)
    return body


class _Reader:
    """Collects one streamed completion from its chunks (the first choice)."""

    def __init__(self, who, on_text: TextCallback):
        self.who = who
        self.on_text = on_text
        self.parts = []
        self.deltas = 0
        self.input_tokens = self.output_tokens = None
        self.finish_reason = None
        self.refusal = ""
        self.started = False  # the response headers arrived

    def feed(self, data):
        if data is sse.DONE:
            return
        if not isinstance(data, dict):
            raise ProviderError("server_error", f"{self.who} sent a chunk that could not be read")
        if data.get("error"):
            raise _in_stream_error(self.who, data["error"])
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = usage.get("prompt_tokens", self.input_tokens)
            self.output_tokens = usage.get("completion_tokens", self.output_tokens)
        choices = data.get("choices") or ()
        if choices and isinstance(choices[0], dict):
            self._choice(choices[0])

    def _choice(self, choice):
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text:
            self.deltas += 1
            self.parts.append(text)
            self.on_text(text, max(self.deltas, self.output_tokens or 0))
        if delta.get("refusal"):
            self.refusal += delta["refusal"]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]

    def result(self) -> GenerationResult:
        if self.finish_reason is None:
            raise ProviderError("stream_incomplete", f"{self.who}'s response stream ended before a finish reason")
        if self.finish_reason in _REFUSALS or (self.refusal and not self.parts):
            reason = self.refusal or f"finish reason: {self.finish_reason}"
            raise ProviderError("refused", f"The model declined to answer ({http_errors.redact(reason, None)})")
        # No usage from the server: tokens and so cost stay unknown (null), never a guess or $0.
        return GenerationResult(
            "".join(self.parts), self.finish_reason, input_tokens=self.input_tokens, output_tokens=self.output_tokens
        )


def _in_stream_error(who, error):
    """An error object sent inside a 200 stream (vLLM and others do): its code stands for a status."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return http_errors.status_error(status, who, detail=error.get("message"), secret=None, in_stream=True)


def _detail(exc: openai.APIStatusError):
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return exc.message


class OpenAIProvider(Provider):
    def __init__(self, entry):
        self.entry = entry
        self._client = None
        self._client_loop = None

    @property
    def who(self):
        return self.entry.short_label

    def _get_client(self):
        # One client per process and event loop (see AnthropicProvider._get_client).
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            entry = self.entry
            self._client = openai.AsyncOpenAI(
                api_key=entry.api_key or NO_KEY,
                base_url=entry.base_url or settings.OPENAI_BASE_URL,
                # Never the environment's OPENAI_ORG_ID / OPENAI_PROJECT_ID headers on another server.
                default_headers=None if entry is catalogue.OPENAI else _NO_OPENAI_ACCOUNT,
                max_retries=0,
                timeout=httpx2.Timeout(float(settings.PROVIDER_REQUEST_TIMEOUT_SECONDS)),
                http_client=async_http_client(self.max_concurrency, openai.DefaultAsyncHttpxClient),
            )
            self._client_loop = loop
        return self._client

    async def prepare(self):
        self._get_client()

    def cost(self, model, input_tokens, output_tokens) -> Decimal | None:
        """Null when the server reported no usage: an unknown cost is not $0."""
        if input_tokens is None or output_tokens is None:
            return None
        return pricing.cost(self.entry, model, input_tokens, output_tokens)

    async def stream(self, request: GenerationRequest, on_text: TextCallback) -> GenerationResult:
        client = self._get_client()
        reader = _Reader(self.who, on_text)
        try:
            create = client.chat.completions.with_streaming_response.create
            async with create(**request_body(self.entry, request)) as response:
                reader.started = True
                async for _, data in sse.events(response.iter_bytes()):
                    reader.feed(data)
        except (openai.APIError, httpx2.TransportError, orjson.JSONDecodeError) as exc:
            raise self._mapped_error(exc, reader.started) from exc
        return reader.result()

    def _mapped_error(self, exc, started):
        who = self.who
        if isinstance(exc, openai.APIStatusError):
            retry_after = http_errors.retry_after_any(exc.response.headers)
            return http_errors.status_error(
                exc.status_code, who, detail=_detail(exc), secret=self.entry.api_key, retry_after=retry_after
            )
        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            return ProviderError("timeout", f"{who} did not answer in time")
        if isinstance(exc, openai.APIResponseValidationError | orjson.JSONDecodeError):
            return ProviderError("server_error", f"{who} sent a response that could not be read")
        if started and isinstance(exc, httpx2.TransportError):
            return ProviderError("stream_incomplete", f"The connection to {who} broke mid-response")
        return ProviderError("connection", f"Could not connect to {who}")

    async def aclose(self):
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()
