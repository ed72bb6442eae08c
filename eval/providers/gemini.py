"""Google Gemini through the google-genai SDK (the maintained successor of google-generativeai).

The SDK does not retry by default and we keep it that way: the job lifecycle owns attempts
and backoff, so every failure is mapped to a :class:`ProviderError` here.
"""

import contextlib
import re

import httpx2
from django.conf import settings
from google import genai
from google.genai import errors, types

from eval.providers import catalogue, http_errors
from eval.providers.base import GenerationRequest, GenerationResult, Provider, TextCallback
from eval.providers.errors import ProviderError

WHO = catalogue.GEMINI.short_label

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


def _name(value):
    """An SDK enum member (or an unknown plain string) as its upper-case API name."""
    return str(getattr(value, "value", value) or "").upper()


def _config(request: GenerationRequest):
    return types.GenerateContentConfig(
        max_output_tokens=request.max_tokens,
        temperature=request.temperature,
        system_instruction=request.system or None,
        top_p=request.top_p,
        stop_sequences=list(request.stop) or None,
        seed=request.seed,
    )


def _contents(request: GenerationRequest):
    """The turns as Gemini contents: its roles are ``user`` and ``model`` (the
    system text goes in ``system_instruction``, see _config)."""
    return [
        types.Content(role="model" if role == "assistant" else "user", parts=[types.Part(text=content)])
        for role, content in request.turns()
    ]


class _Reader:
    """Collects one streamed answer from its chunks."""

    def __init__(self, on_text: TextCallback):
        self.on_text = on_text
        self.parts = []
        self.chunks = 0
        self.input_tokens = self.output_tokens = None
        self.finish = ""
        self.started = False  # a chunk arrived

    def feed(self, chunk):
        self.started = True
        feedback = chunk.prompt_feedback
        if feedback is not None and _name(feedback.block_reason) not in _UNSPECIFIED:
            reason = _name(feedback.block_reason)
            raise ProviderError("refused", f"{WHO} blocked the prompt (block reason: {reason.lower()})")
        if chunk.usage_metadata is not None:
            self._usage(chunk.usage_metadata)
        if chunk.candidates:
            self._candidate(chunk.candidates[0])

    def _usage(self, usage):
        if usage.prompt_token_count is not None:
            self.input_tokens = usage.prompt_token_count
        if usage.candidates_token_count is not None or usage.thoughts_token_count is not None:
            self.output_tokens = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)

    def _candidate(self, candidate):
        content = candidate.content
        for part in (content.parts if content is not None else None) or []:
            if part.text and not part.thought:
                self.chunks += 1
                self.parts.append(part.text)
                self.on_text(part.text, max(self.chunks, self.output_tokens or 0))
        if _name(candidate.finish_reason) not in _UNSPECIFIED:
            self.finish = _name(candidate.finish_reason)

    def result(self) -> GenerationResult:
        if not self.finish:
            raise ProviderError("stream_incomplete", f"{WHO}'s response stream ended without a finish reason")
        if self.finish in _REFUSALS:
            raise ProviderError("refused", f"{WHO} declined to answer (finish reason: {self.finish.lower()})")
        output_tokens = self.chunks if self.output_tokens is None else self.output_tokens
        return GenerationResult(
            "".join(self.parts), self.finish.lower(), input_tokens=self.input_tokens, output_tokens=output_tokens
        )


def _api_error(exc: errors.APIError):
    status = exc.code if isinstance(exc.code, int) else None
    if status is None or status == 200:
        status = _RPC_STATUS.get(str(exc.status or ""), 500 if isinstance(exc, errors.ServerError) else 400)
    retry_after = retry_delay_from_error(exc.details)
    if retry_after is None:
        retry_after = http_errors.retry_after(getattr(exc.response, "headers", None))
    return http_errors.status_error(
        status, WHO, detail=exc.message, secret=settings.GEMINI_API_KEY, retry_after=retry_after
    )


def _mapped_error(exc, started):
    if isinstance(exc, errors.APIError):
        return _api_error(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError("timeout", f"{WHO} did not answer in time")
    if isinstance(exc, httpx2.ConnectError):
        return ProviderError("connection", f"Could not connect to {WHO}")
    if started:
        return ProviderError("stream_incomplete", f"The connection to {WHO} broke mid-response")
    return ProviderError("connection", f"The connection to {WHO} failed")


class GeminiProvider(Provider):
    entry = catalogue.GEMINI

    def __init__(self):
        self._client = None

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
        reader = _Reader(on_text)
        try:
            stream = await client.aio.models.generate_content_stream(
                model=request.model, contents=_contents(request), config=_config(request)
            )
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    reader.feed(chunk)
        except (errors.APIError, httpx2.TransportError) as exc:
            raise _mapped_error(exc, reader.started) from exc
        return reader.result()

    async def aclose(self):
        client, self._client = self._client, None
        if client is not None:
            await client.aio.aclose()
            client.close()
