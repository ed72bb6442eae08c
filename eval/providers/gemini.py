"""Google Gemini through the google-genai SDK (the maintained successor of google-generativeai).

The SDK does not retry by default and we keep it that way: the job lifecycle owns attempts
and backoff, so every failure is mapped to a :class:`ProviderError` here.
"""

import contextlib
import email.utils
import re
import time

import httpx2
from django.conf import settings
from google import genai
from google.genai import errors, types

from eval.providers.base import GenerationRequest, GenerationResult, Provider, TextCallback, parse_models
from eval.providers.errors import ProviderError

_STATUS_CODES = {
    400: ("bad_request", "Gemini rejected the request"),
    401: ("auth", "Gemini rejected the API key"),
    403: ("auth", "Gemini denied access with this API key"),
    404: ("not_found", "Gemini does not know this model"),
    408: ("timeout", "Gemini timed out the request"),
    409: ("bad_request", "Gemini reported a conflict"),
    413: ("too_large", "The request is too large for Gemini"),
    429: ("rate_limited", "Gemini rate limit reached"),
    529: ("overloaded", "Gemini is overloaded"),
}
# google.rpc status names, for error frames that carry no numeric code.
_RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# Finish / block reasons that mean the model (or its safety filters) would not answer.
_REFUSALS = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "MODEL_ARMOR",
    "JAILBREAK",
}
_UNSPECIFIED = {"FINISH_REASON_UNSPECIFIED", "BLOCKED_REASON_UNSPECIFIED", ""}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
_DETAIL_LIMIT = 300


def retry_delay_from_error(details):
    """Seconds from a google.rpc ``RetryInfo`` (``"retryDelay": "7s"``) in an error body, else None."""
    if isinstance(details, list) and len(details) == 1:
        details = details[0]
    if not isinstance(details, dict):
        return None
    error = details.get("error", details)
    items = error.get("details") if isinstance(error, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = item.get("retryDelay")
            if isinstance(delay, dict):  # the proto-JSON object form {"seconds": 7, "nanos": 0}
                return max(0.0, float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9)
            match = _DURATION.match(str(delay or ""))
            if match:
                return float(match.group(1))
    return None


def _retry_after_header(response):
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _redact(text, secret):
    text = " ".join(str(text or "").split())
    if secret:
        text = text.replace(secret, "[redacted]")
    if len(text) > _DETAIL_LIMIT:
        text = text[: _DETAIL_LIMIT - 1] + "…"
    return text


def _name(value):
    """An SDK enum member (or an unknown plain string) as its upper-case API name."""
    return str(getattr(value, "value", value) or "").upper()


class GeminiProvider(Provider):
    name = "gemini"
    label = "Google Gemini"
    max_temperature = 2.0
    # Rough public list prices, USD per million tokens (input, output), short prompts.
    # First matching prefix wins, so the more specific names come first.
    prices = {
        "gemini-3-pro": ("2", "12"),
        "gemini-2.5-pro": ("1.25", "10"),
        "gemini-2.5-flash-lite": ("0.10", "0.40"),
        "gemini-2.5-flash": ("0.30", "2.50"),
        "gemini-2.0-flash-lite": ("0.075", "0.30"),
        "gemini-2.0-flash": ("0.10", "0.40"),
    }

    def __init__(self):
        self._client = None

    def models(self):
        return parse_models(settings.GEMINI_MODELS)

    def is_configured(self):
        return bool(settings.GEMINI_API_KEY)

    @property
    def max_concurrency(self):
        return settings.GEMINI_MAX_CONCURRENCY

    def _get_client(self):
        # The SDK's async httpx client keeps one pool per event loop itself.
        if self._client is None:
            self._client = genai.Client(
                api_key=settings.GEMINI_API_KEY,
                vertexai=False,  # never let GOOGLE_GENAI_USE_VERTEXAI switch us to Vertex AI
                http_options=types.HttpOptions(
                    base_url=settings.GEMINI_BASE_URL or None,
                    timeout=max(1, round(float(settings.PROVIDER_REQUEST_TIMEOUT_SECONDS) * 1000)),  # milliseconds
                    # Keep as many idle connections as jobs in flight (httpx keeps 20).
                    async_client_args={"limits": httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)},
                ),
            )
        return self._client

    async def prepare(self):
        self._get_client()

    async def stream(self, request: GenerationRequest, on_text: TextCallback) -> GenerationResult:
        client = self._get_client()
        config = types.GenerateContentConfig(
            max_output_tokens=request.max_tokens,
            temperature=request.temperature,
            system_instruction=request.system or None,
        )
        parts = []
        chunks = 0
        input_tokens = output_tokens = None
        finish = ""
        started = False
        try:
            stream = await client.aio.models.generate_content_stream(
                model=request.model, contents=request.prompt, config=config
            )
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    started = True
                    feedback = chunk.prompt_feedback
                    if feedback is not None and _name(feedback.block_reason) not in _UNSPECIFIED:
                        reason = _name(feedback.block_reason)
                        raise ProviderError("refused", f"Gemini blocked the prompt (block reason: {reason.lower()})")
                    usage = chunk.usage_metadata
                    if usage is not None:
                        if usage.prompt_token_count is not None:
                            input_tokens = usage.prompt_token_count
                        if usage.candidates_token_count is not None or usage.thoughts_token_count is not None:
                            output_tokens = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
                    candidate = chunk.candidates[0] if chunk.candidates else None
                    if candidate is None:
                        continue
                    content = candidate.content
                    for part in (content.parts if content is not None else None) or []:
                        if part.text and not part.thought:
                            chunks += 1
                            parts.append(part.text)
                            on_text(part.text, max(chunks, output_tokens or 0))
                    if _name(candidate.finish_reason) not in _UNSPECIFIED:
                        finish = _name(candidate.finish_reason)
        except errors.APIError as exc:
            raise self._api_error(exc) from exc
        except httpx2.TimeoutException as exc:
            raise ProviderError("timeout", "Gemini did not answer in time") from exc
        except httpx2.ConnectError as exc:
            raise ProviderError("connection", "Could not connect to Gemini") from exc
        except httpx2.TransportError as exc:
            if started:
                raise ProviderError("stream_incomplete", "The connection to Gemini broke mid-response") from exc
            raise ProviderError("connection", "The connection to Gemini failed") from exc

        if not finish:
            raise ProviderError("stream_incomplete", "Gemini's response stream ended without a finish reason")
        if finish in _REFUSALS:
            raise ProviderError("refused", f"Gemini declined to answer (finish reason: {finish.lower()})")
        if output_tokens is None:
            output_tokens = chunks
        return GenerationResult("".join(parts), finish.lower(), input_tokens=input_tokens, output_tokens=output_tokens)

    def _api_error(self, exc):
        status = exc.code if isinstance(exc.code, int) else None
        if status is None or status == 200:
            status = _RPC_STATUS.get(str(exc.status or ""), 500 if isinstance(exc, errors.ServerError) else 400)
        code, text = _STATUS_CODES.get(status) or (
            ("server_error", "Gemini had a server error")
            if status >= 500
            else ("bad_request", "Gemini refused the request")
        )
        message = f"{text} (HTTP {status})"
        detail = _redact(exc.message, settings.GEMINI_API_KEY)
        if detail:
            message = f"{message}: {detail}"
        retry_after = retry_delay_from_error(exc.details)
        if retry_after is None:
            retry_after = _retry_after_header(exc.response)
        return ProviderError(code, message, retry_after=retry_after, status=status)

    async def aclose(self):
        client, self._client = self._client, None
        if client is not None:
            await client.aio.aclose()
            client.close()
