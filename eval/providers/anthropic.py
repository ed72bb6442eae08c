"""Anthropic Claude through the official SDK (Messages API, streamed).

The SDK's own retries are off (``max_retries=0``): the job lifecycle owns attempts and
backoff, so every failure is mapped to a :class:`ProviderError` here and handed back.
"""

import asyncio

import anthropic
import httpx2
import orjson
from django.conf import settings

from eval.providers import catalogue, http_errors, sse
from eval.providers.base import GenerationRequest, GenerationResult, Provider, TextCallback
from eval.providers.errors import ProviderError
from eval.providers.http import async_http_client

WHO = catalogue.ANTHROPIC.short_label
# error.type of an in-stream `event: error` frame (sent with HTTP 200) -> the status it stands for.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "timeout_error": 408,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
# SDK and transport exceptions (first match wins) -> (error code, message).
_EXCEPTIONS = (
    (anthropic.APITimeoutError, "timeout", f"{WHO} did not answer in time"),
    (anthropic.APIConnectionError, "connection", f"Could not connect to {WHO}"),
    (anthropic.APIResponseValidationError, "server_error", f"{WHO} sent a response that could not be read"),
    (orjson.JSONDecodeError, "server_error", f"{WHO} sent a response that could not be read"),
    # The SDK lets read timeouts between stream chunks through as raw httpx2 errors.
    (httpx2.TimeoutException, "timeout", f"{WHO} stopped sending the response (read timed out)"),
)


def retry_after_from_headers(headers):
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date), else None."""
    seconds = http_errors.retry_after_ms(headers)
    return seconds if seconds is not None else http_errors.retry_after(headers)


def _params(request: GenerationRequest):
    params = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        # The Messages API takes the turns as they are; the system text goes in ``system``.
        "messages": [{"role": role, "content": content} for role, content in request.turns()],
        "stream": True,
    }
    if request.system:
        params["system"] = request.system
    # anthropic >= 1.0 dropped `temperature` and `top_p` from the typed signature (the API still
    # takes them, though models after Opus 4.6 reject non-default values): send them in the body.
    sampling = {"temperature": request.temperature, "top_p": request.top_p}
    if any(value is not None for value in sampling.values()):
        params["extra_body"] = {name: value for name, value in sampling.items() if value is not None}
    if request.stop:
        params["stop_sequences"] = list(request.stop)
    return params


def _input_tokens(usage):
    total = usage.get("input_tokens")
    if total is None:
        return None
    return total + (usage.get("cache_creation_input_tokens") or 0) + (usage.get("cache_read_input_tokens") or 0)


class _Reader:
    """Collects one streamed message from its events (the Messages API's JSON,
    as FACTS.md lists them; a frame without an ``event:`` line is ignored, as
    the SDK ignores it)."""

    def __init__(self, on_text: TextCallback):
        self.on_text = on_text
        self.parts = []
        self.deltas = 0
        self.input_tokens = self.output_tokens = None
        self.stop_reason = None
        self.finished = False
        self.started = False  # the response headers arrived

    def feed(self, name, data):
        if not isinstance(data, dict):
            raise ProviderError("server_error", f"{WHO} sent an event that could not be read")
        if name == "content_block_delta":
            self._text(data.get("delta") or {})
        elif name == "message_start":
            self.input_tokens = _input_tokens((data.get("message") or {}).get("usage") or {})
        elif name == "message_delta":
            self._message_delta(data)
        elif name == "message_stop":
            self.finished = True
        elif name == "error":
            raise _in_stream_error(data)

    def _text(self, delta):
        text = delta.get("text")
        if delta.get("type") == "text_delta" and text:
            self.deltas += 1
            self.parts.append(text)
            self.on_text(text, max(self.deltas, self.output_tokens or 0))

    def _message_delta(self, data):
        self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
        usage = data.get("usage") or {}
        if usage.get("output_tokens") is not None:
            self.output_tokens = usage["output_tokens"]
        if usage.get("input_tokens") is not None:
            self.input_tokens = _input_tokens(usage)

    def result(self) -> GenerationResult:
        if not self.finished or self.stop_reason is None:
            raise ProviderError("stream_incomplete", f"{WHO}'s response stream ended before the message was complete")
        if self.stop_reason == "refusal":
            raise ProviderError("refused", "Claude declined to answer (stop reason: refusal)")
        output_tokens = self.deltas if self.output_tokens is None else self.output_tokens
        return GenerationResult(
            "".join(self.parts), self.stop_reason, input_tokens=self.input_tokens, output_tokens=output_tokens
        )


def _in_stream_error(data):
    """An ``event: error`` frame (sent after HTTP 200): its error type stands for a status."""
    error = data.get("error") or {}
    return http_errors.status_error(
        _ERROR_TYPE_STATUS.get(error.get("type") or "", 500),
        WHO,
        detail=error.get("message"),
        secret=settings.ANTHROPIC_API_KEY,
        retry_after=None,
        in_stream=True,
    )


def _status_error(exc: anthropic.APIStatusError):
    return http_errors.status_error(
        exc.status_code,
        WHO,
        detail=exc.api_message,
        secret=settings.ANTHROPIC_API_KEY,
        retry_after=retry_after_from_headers(exc.response.headers),
    )


def _mapped_error(exc, started):
    """The ProviderError for an SDK or transport exception, or None to let it through."""
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc)
    for kind, code, message in _EXCEPTIONS:
        if isinstance(exc, kind):
            return ProviderError(code, message)
    if isinstance(exc, httpx2.TransportError):
        if started:
            return ProviderError("stream_incomplete", f"The connection to {WHO} broke mid-response")
        return ProviderError("connection", f"Could not connect to {WHO}")
    return None


class AnthropicProvider(Provider):
    entry = catalogue.ANTHROPIC

    def __init__(self):
        self._client = None
        self._client_loop = None

    def _get_client(self):
        # One client per process; its connection pool belongs to one event loop, so a new
        # loop (only in tests or after a restart of the worker's loop) gets a fresh client.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = anthropic.AsyncAnthropic(
                api_key=settings.ANTHROPIC_API_KEY,
                base_url=settings.ANTHROPIC_BASE_URL or None,
                max_retries=0,
                timeout=httpx2.Timeout(float(settings.PROVIDER_REQUEST_TIMEOUT_SECONDS)),
                # As many kept-alive connections as calls in flight (the SDK keeps 100:
                # a worker streaming more would reconnect for every job), in small pools.
                http_client=async_http_client(self.max_concurrency, anthropic.DefaultAsyncHttpxClient),
                # No OpenTelemetry here: building each call's span attributes cost CPU for nothing.
                open_telemetry=False,
            )
            self._client_loop = loop
        return self._client

    async def prepare(self):
        self._get_client()

    async def stream(self, request: GenerationRequest, on_text: TextCallback) -> GenerationResult:
        client = self._get_client()
        reader = _Reader(on_text)
        try:
            # The raw streamed body, read by eval/providers/sse.py (see there why).
            async with client.messages.with_streaming_response.create(**_params(request)) as response:
                reader.started = True
                async for name, data in sse.events(response.iter_bytes()):
                    reader.feed(name, data)
        except (anthropic.APIError, httpx2.TransportError, orjson.JSONDecodeError) as exc:
            error = _mapped_error(exc, reader.started)
            if error is None:
                raise
            raise error from exc
        return reader.result()

    async def aclose(self):
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()
