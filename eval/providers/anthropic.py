"""Anthropic Claude through the official SDK (Messages API, streamed).

The SDK's own retries are off (``max_retries=0``): the job lifecycle owns attempts and
backoff, so every failure is mapped to a :class:`ProviderError` here and handed back.
"""

import asyncio
import email.utils
import time

import anthropic
import httpx2
from django.conf import settings

from eval.providers.base import GenerationRequest, GenerationResult, Provider, TextCallback, parse_models
from eval.providers.errors import ProviderError
from eval.providers.http import async_http_client

# HTTP status -> (error code, what a reviewer reads). Anything else: 5xx server_error, 4xx bad_request.
_STATUS_CODES = {
    400: ("bad_request", "Anthropic rejected the request"),
    401: ("auth", "Anthropic rejected the API key"),
    403: ("auth", "Anthropic denied access with this API key"),
    404: ("not_found", "Anthropic does not know this model"),
    408: ("timeout", "Anthropic timed out the request"),
    409: ("bad_request", "Anthropic reported a conflict"),
    413: ("too_large", "The request is too large for Anthropic"),
    429: ("rate_limited", "Anthropic rate limit reached"),
    529: ("overloaded", "Anthropic is overloaded"),
}
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
_DETAIL_LIMIT = 300


def retry_after_from_headers(headers):
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date), else None."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _redact(text, secret):
    text = " ".join(str(text or "").split())
    if secret:
        text = text.replace(secret, "[redacted]")
    if len(text) > _DETAIL_LIMIT:
        text = text[: _DETAIL_LIMIT - 1] + "…"
    return text


class AnthropicProvider(Provider):
    name = "anthropic"
    label = "Anthropic Claude"
    max_temperature = 1.0
    # Rough public list prices, USD per million tokens (input, output). First matching prefix wins.
    prices = {
        "claude-opus-4-5": ("5", "25"),
        "claude-opus-4": ("15", "75"),
        "claude-3-opus": ("15", "75"),
        "claude-sonnet-4": ("3", "15"),
        "claude-3-7-sonnet": ("3", "15"),
        "claude-3-5-sonnet": ("3", "15"),
        "claude-haiku-4-5": ("1", "5"),
        "claude-3-5-haiku": ("0.80", "4"),
        "claude-3-haiku": ("0.25", "1.25"),
    }

    def __init__(self):
        self._client = None
        self._client_loop = None

    def models(self):
        return parse_models(settings.ANTHROPIC_MODELS)

    def is_configured(self):
        return bool(settings.ANTHROPIC_API_KEY)

    @property
    def max_concurrency(self):
        return settings.ANTHROPIC_MAX_CONCURRENCY

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
        params = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": request.prompt}],
            "stream": True,
        }
        if request.system:
            params["system"] = request.system
        if request.temperature is not None:
            # anthropic >= 1.0 dropped `temperature` from the typed signature (the API still takes
            # it, though models after Opus 4.6 reject non-default values): send it in the body.
            params["extra_body"] = {"temperature": request.temperature}

        parts = []
        deltas = 0
        input_tokens = output_tokens = None
        stop_reason = None
        finished = False
        started = False
        try:
            events = await client.messages.create(**params)
            started = True
            async with events:
                async for event in events:
                    if event.type == "message_start":
                        input_tokens = _input_tokens(event.message.usage)
                    elif event.type == "content_block_delta":
                        if event.delta.type == "text_delta" and event.delta.text:
                            deltas += 1
                            parts.append(event.delta.text)
                            on_text(event.delta.text, max(deltas, output_tokens or 0))
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        if event.usage.output_tokens is not None:
                            output_tokens = event.usage.output_tokens
                        if event.usage.input_tokens is not None:
                            input_tokens = _input_tokens(event.usage)
                    elif event.type == "message_stop":
                        finished = True
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except anthropic.APITimeoutError as exc:
            raise ProviderError("timeout", "Anthropic did not answer in time") from exc
        except anthropic.APIConnectionError as exc:
            raise ProviderError("connection", "Could not connect to Anthropic") from exc
        except anthropic.APIResponseValidationError as exc:
            raise ProviderError("server_error", "Anthropic sent a response that could not be read") from exc
        except httpx2.TimeoutException as exc:
            # The SDK lets read timeouts between stream chunks through as raw httpx2 errors.
            raise ProviderError("timeout", "Anthropic stopped sending the response (read timed out)") from exc
        except httpx2.TransportError as exc:
            if started:
                raise ProviderError("stream_incomplete", "The connection to Anthropic broke mid-response") from exc
            raise ProviderError("connection", "Could not connect to Anthropic") from exc

        if not finished or stop_reason is None:
            raise ProviderError(
                "stream_incomplete", "Anthropic's response stream ended before the message was complete"
            )
        if stop_reason == "refusal":
            raise ProviderError("refused", "Claude declined to answer (stop reason: refusal)")
        if output_tokens is None:
            output_tokens = deltas
        return GenerationResult("".join(parts), stop_reason, input_tokens=input_tokens, output_tokens=output_tokens)

    def _status_error(self, exc):
        status = exc.status_code
        in_stream = status == 200
        if in_stream:
            status = _ERROR_TYPE_STATUS.get(exc.type or "", 500)
        code, text = _STATUS_CODES.get(status) or (
            ("server_error", "Anthropic had a server error")
            if status >= 500
            else ("bad_request", "Anthropic refused the request")
        )
        where = "mid-stream error" if in_stream else f"HTTP {status}"
        message = f"{text} ({where})"
        detail = _redact(exc.api_message, settings.ANTHROPIC_API_KEY)
        if detail:
            message = f"{message}: {detail}"
        retry_after = None if in_stream else retry_after_from_headers(exc.response.headers)
        return ProviderError(code, message, retry_after=retry_after, status=None if in_stream else status)

    async def aclose(self):
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()


def _input_tokens(usage):
    total = usage.input_tokens
    if total is None:
        return None
    for extra in (getattr(usage, "cache_creation_input_tokens", None), getattr(usage, "cache_read_input_tokens", None)):
        total += extra or 0
    return total
