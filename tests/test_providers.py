"""The Anthropic and Gemini providers driving their real SDKs against the local fake server.

Every behaviour both providers share is one test parametrised over both SDKs (the
``sdk`` fixture); what only one API has is a test parametrised over that SDK alone.
"""

import asyncio
import re
from dataclasses import dataclass
from decimal import Decimal

import pytest

from eval import providers
from eval.providers import catalogue
from eval.providers.anthropic import AnthropicProvider, retry_after_from_headers
from eval.providers.base import GenerationRequest
from eval.providers.errors import ProviderError
from eval.providers.gemini import GeminiProvider, retry_delay_from_error
from tests.fakes.llm_server import FakeLLMServer, Script
from tests.helpers import free_port

ANTHROPIC_KEY = "sk-ant-test-secret-key-0123456789"
GEMINI_KEY = "AIza-test-secret-key-0123456789"


def anthropic_sent(record):
    """What the Anthropic provider put on the wire, in the shape both SDKs are compared in."""
    body = record.body
    assert record.headers["authorization"].startswith("Bearer ")
    assert record.headers["anthropic-version"]
    assert body["stream"] is True
    prompt = body["messages"][0]["content"]
    assert body["messages"] == [{"role": "user", "content": prompt}]
    sent = {
        "path": record.path,
        "api_key": record.headers["authorization"].removeprefix("Bearer "),
        "model": body["model"],
        "max_tokens": body["max_tokens"],
        "prompt": prompt,
    }
    sent.update({name: body[name] for name in ("system", "temperature") if name in body})
    return sent


def gemini_sent(record):
    body = record.body
    assert record.query == {"alt": "sse"}
    prompt = body["contents"][0]["parts"][0]["text"]
    assert body["contents"] == [{"parts": [{"text": prompt}], "role": "user"}]
    config = body["generationConfig"]
    assert set(config) <= {"maxOutputTokens", "temperature"}
    sent = {
        "path": record.path,
        "api_key": record.headers["x-goog-api-key"],
        "model": re.fullmatch(r"/v1/models/([^:]+):streamGenerateContent", record.path)[1],
        "max_tokens": config["maxOutputTokens"],
        "prompt": prompt,
    }
    if "temperature" in config:
        sent["temperature"] = config["temperature"]
    if "systemInstruction" in body:
        sent["system"] = body["systemInstruction"]["parts"][0]["text"]
        assert body["systemInstruction"]["parts"] == [{"text": sent["system"]}]
    return sent


@dataclass(frozen=True)
class Sdk:
    """One provider under test: its settings, the fake's wire names and what to expect."""

    name: str
    cls: type
    key: str
    setting: str  # prefix of the provider's settings (ANTHROPIC_API_KEY, ...)
    models: tuple[str, ...]
    model_limits: tuple[tuple[str, int], ...]
    concurrency: int
    label: str
    who: str
    max_temperature: float
    path: str
    end_stop_reason: str
    # tokens_so_far handed to on_text for chunks ["Hel", "lo ", "world"] with output_tokens=4
    streamed_counts: tuple[int, ...]
    wire_case: str  # how the API spells stop reasons: str.lower or str.upper
    sent: object
    costs: tuple[tuple[str, int, int, Decimal | None], ...]

    @property
    def model(self):
        return self.models[0].partition(":")[0]

    def stop(self, reason):
        return getattr(reason, self.wire_case)()


ANTHROPIC = Sdk(
    name="anthropic",
    cls=AnthropicProvider,
    key=ANTHROPIC_KEY,
    setting="ANTHROPIC",
    models=("claude-test-1:1000", "claude-test-2"),
    model_limits=(("claude-test-1", 1000), ("claude-test-2", 8192)),
    concurrency=7,
    label="Anthropic Claude",
    who="Anthropic",
    max_temperature=1.0,
    path="/v1/messages",
    end_stop_reason="end_turn",
    streamed_counts=(1, 2, 3),
    wire_case="lower",
    sent=anthropic_sent,
    costs=(
        ("claude-sonnet-4-5", 1_000_000, 1_000_000, Decimal("18")),
        ("claude-opus-4-5-20251101", 1_000_000, 0, Decimal("5")),
        ("unknown-model", 10, 10, None),
    ),
)
GEMINI = Sdk(
    name="gemini",
    cls=GeminiProvider,
    key=GEMINI_KEY,
    setting="GEMINI",
    models=("gemini-test:2048", "gemini-other"),
    model_limits=(("gemini-test", 2048), ("gemini-other", 8192)),
    concurrency=9,
    label="Google Gemini",
    who="Gemini",
    max_temperature=2.0,
    path="/v1/models/gemini-test:streamGenerateContent",
    end_stop_reason="stop",
    streamed_counts=(1, 2, 4),  # the last chunk carries the real usage
    wire_case="upper",
    sent=gemini_sent,
    costs=(
        ("gemini-2.5-flash-lite", 1_000_000, 1_000_000, Decimal("0.5")),
        ("gemini-2.5-flash", 1_000_000, 1_000_000, Decimal("2.8")),
        ("unknown-model", 10, 10, None),
    ),
)
SDKS = {sdk.name: sdk for sdk in (ANTHROPIC, GEMINI)}
only_anthropic = pytest.mark.parametrize("sdk", ["anthropic"], indirect=True)
only_gemini = pytest.mark.parametrize("sdk", ["gemini"], indirect=True)


@pytest.fixture(scope="module")
def fake_server():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(params=sorted(SDKS))
def sdk(request):
    return SDKS[request.param]


@pytest.fixture
def fake(sdk, fake_server, settings, monkeypatch):
    for name in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    fake_server.clear()
    fake_server.default = Script()
    setattr(settings, f"{sdk.setting}_API_KEY", sdk.key)
    setattr(settings, f"{sdk.setting}_BASE_URL", fake_server.url)
    setattr(settings, f"{sdk.setting}_MODELS", list(sdk.models))
    setattr(settings, f"{sdk.setting}_MAX_CONCURRENCY", sdk.concurrency)
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 5
    providers.reset()
    yield fake_server
    providers.reset()


def request(sdk, **overrides):
    fields = {"model": sdk.model, "prompt": "Say hello", "max_tokens": 100}
    fields.update(overrides)
    return GenerationRequest(**fields)


def run(sdk, req=None, on_text=None):
    """Stream one request through a fresh provider; returns (result, [(delta, tokens_so_far)])."""
    provider = providers.get_provider(sdk.name)
    seen = []

    async def go():
        try:
            return await provider.stream(req or request(sdk), on_text or (lambda delta, n: seen.append((delta, n))))
        finally:
            await provider.aclose()

    return asyncio.run(go()), seen


def run_error(sdk, req=None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        run(sdk, req)
    err = info.value
    assert sdk.key not in str(err)
    assert sdk.key not in repr(err.args)
    return err


# --- a good answer -----------------------------------------------------------------------


def test_streams_text_usage_and_stop_reason(sdk, fake):
    fake.push(Script(chunks=["Hel", "lo ", "world"], input_tokens=9, output_tokens=4))

    result, seen = run(sdk)

    assert result.text == "Hello world"
    assert result.stop_reason == sdk.end_stop_reason
    assert result.input_tokens == 9
    assert result.output_tokens == 4
    assert seen == list(zip(["Hel", "lo ", "world"], sdk.streamed_counts, strict=True))
    assert fake.calls == 1


def test_sends_key_model_max_tokens_system_and_temperature(sdk, fake):
    temperature = sdk.max_temperature * 0.75  # 1.5 for Gemini: above Anthropic's limit
    run(sdk, request(sdk, system="Be terse.", temperature=temperature, max_tokens=321, prompt="Hi there"))

    assert sdk.sent(fake.last) == {
        "path": sdk.path,
        "api_key": sdk.key,
        "model": sdk.model,
        "max_tokens": 321,
        "system": "Be terse.",
        "temperature": temperature,
        "prompt": "Hi there",
    }


CONVERSATION = (("user", "What is 2+2?"), ("assistant", "4."), ("user", "And times 3?"))


def conversation_sent(sdk, record):
    """(system text or None, [(role, text)...]) as the API received them, roles in our words."""
    body = record.body
    if sdk.name == "anthropic":
        return body.get("system"), [(m["role"], m["content"]) for m in body["messages"]]
    system = body.get("systemInstruction")
    turns = [
        ({"model": "assistant"}.get(c["role"], c["role"]), "".join(p["text"] for p in c["parts"]))
        for c in body["contents"]
    ]
    return (system["parts"][0]["text"] if system else None), turns


def test_a_conversation_is_sent_as_turns_with_the_system_apart(sdk, fake):
    run(sdk, request(sdk, prompt="And times 3?", system="Answer in digits.", messages=CONVERSATION))

    assert conversation_sent(sdk, fake.last) == ("Answer in digits.", list(CONVERSATION))
    if sdk.name == "gemini":  # Gemini names the model's turns "model"
        assert [c["role"] for c in fake.last.body["contents"]] == ["user", "model", "user"]


def test_a_conversation_without_a_system_turn_sends_none(sdk, fake):
    run(sdk, request(sdk, prompt="And times 3?", messages=CONVERSATION))

    assert conversation_sent(sdk, fake.last) == (None, list(CONVERSATION))


def test_leaves_out_system_and_temperature_when_not_given(sdk, fake):
    run(sdk)

    assert sdk.sent(fake.last) == {
        "path": sdk.path,
        "api_key": sdk.key,
        "model": sdk.model,
        "max_tokens": 100,
        "prompt": "Say hello",
    }


def test_max_tokens_stop_reason_is_kept_in_lower_case(sdk, fake):
    fake.push(Script(chunks=["cut"], stop_reason=sdk.stop("max_tokens")))

    result, _ = run(sdk)

    assert (result.text, result.stop_reason) == ("cut", "max_tokens")


@only_gemini
def test_vertex_env_var_is_ignored(sdk, fake, monkeypatch):
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")

    result, _ = run(sdk)

    assert result.stop_reason == "stop"
    assert fake.last.headers["x-goog-api-key"] == sdk.key


# --- HTTP errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (400, "bad_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "not_found", False),
        (408, "timeout", True),
        (409, "bad_request", False),
        (413, "too_large", False),
        (429, "rate_limited", True),
        (500, "server_error", True),
        (503, "server_error", True),
        (504, "server_error", True),
        (529, "overloaded", True),
    ],
)
def test_http_errors_are_mapped(sdk, fake, status, code, transient):
    fake.push(Script(status=status))

    err = run_error(sdk)

    assert err.code == code
    assert err.transient is transient
    assert err.status == status
    assert f"HTTP {status}" in err.message
    assert err.message.startswith(sdk.who) or err.message.startswith("The request")
    assert fake.calls == 1  # the SDK does not retry: the lifecycle owns retries


def test_rate_limit_reports_retry_after_header(sdk, fake):
    fake.push(Script(status=429, retry_after=7))

    err = run_error(sdk)

    assert err.code == "rate_limited"
    assert err.retry_after == 7.0
    assert err.message.startswith(f"{sdk.who} rate limit reached (HTTP 429)")


@pytest.mark.parametrize(
    ("sdk", "retry_after"),
    [("anthropic", 1.5), ("gemini", 30.0)],
    indirect=["sdk"],
)
def test_retry_after_ms_wins_over_retry_after_for_anthropic_only(sdk, fake, retry_after):
    fake.push(Script(status=529, retry_after=30, retry_after_ms=1500))

    err = run_error(sdk)

    assert err.code == "overloaded"
    assert err.retry_after == retry_after


def test_no_retry_after_without_header(sdk, fake):
    fake.push(Script(status=500))

    assert run_error(sdk).retry_after is None


@only_gemini
def test_rate_limit_retry_delay_comes_from_the_body(sdk, fake):
    fake.push(Script(status=429, retry_delay="7s"))

    err = run_error(sdk)

    assert err.code == "rate_limited"
    assert err.retry_after == 7.0
    assert err.message.startswith("Gemini rate limit reached (HTTP 429)")


@only_gemini
def test_retry_delay_in_the_body_wins_over_the_header(sdk, fake):
    fake.push(Script(status=429, retry_delay="2s", retry_after=9))

    assert run_error(sdk).retry_after == 2.0


def test_retry_after_parsing():
    assert retry_after_from_headers({"retry-after-ms": "250"}) == 0.25
    assert retry_after_from_headers({"retry-after-ms": "soon", "retry-after": "4"}) == 4.0
    assert retry_after_from_headers({"retry-after": "12"}) == 12.0
    assert retry_after_from_headers({"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}) > 0
    assert retry_after_from_headers({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}) == 0.0
    assert retry_after_from_headers({"retry-after": "soon"}) is None
    assert retry_after_from_headers({}) is None
    assert retry_after_from_headers(None) is None


def test_retry_delay_parsing():
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}
    assert retry_delay_from_error({"error": {"details": [info]}}) == 1.5
    assert retry_delay_from_error([{"error": {"details": [info]}}]) == 1.5
    assert retry_delay_from_error({"error": {"details": [{**info, "retryDelay": {"seconds": 2}}]}}) == 2.0
    assert retry_delay_from_error({"error": {"details": [{"@type": "other"}]}}) is None
    assert retry_delay_from_error(None) is None


@pytest.mark.parametrize(("status", "code"), [(400, "bad_request"), (401, "auth")])
def test_api_key_echoed_by_the_server_is_redacted(sdk, fake, status, code):
    fake.push(Script(status=status, error_message=f"API key not valid: {sdk.key}"))

    err = run_error(sdk)

    assert err.code == code
    assert "[redacted]" in err.message


def test_long_server_detail_is_cut(sdk, fake):
    fake.push(Script(status=400, error_message="x" * 1000))

    err = run_error(sdk)

    detail = err.message.partition(": ")[2]
    assert len(detail) == 300 and detail.endswith("…")


# --- broken streams -----------------------------------------------------------------------


def test_stream_ended_before_its_end_is_incomplete(sdk, fake):
    """Anthropic: no message_stop; Gemini: no finish reason."""
    fake.push(Script(chunks=["a", "b", "c"], cut_after=2))

    err = run_error(sdk)

    assert err.code == "stream_incomplete"
    assert err.transient


def test_dropped_connection_mid_stream_is_incomplete(sdk, fake):
    fake.push(Script(chunks=["a", "b", "c"], abort_after=1))

    err = run_error(sdk)

    assert err.code == "stream_incomplete"
    assert err.transient


@pytest.mark.parametrize(
    ("sdk", "frame", "code", "status", "where"),
    [
        ("anthropic", {"error_type": "overloaded_error"}, "overloaded", None, "mid-stream error"),
        ("gemini", {"status": 503}, "server_error", 503, "HTTP 503"),
    ],
    indirect=["sdk"],
)
def test_error_frame_mid_stream(sdk, fake, frame, code, status, where):
    fake.push(Script(chunks=["a", "b"], error_after=1, error_message=f"busy {sdk.key}", **frame))

    err = run_error(sdk)

    assert err.code == code
    assert err.transient
    assert err.status == status
    assert f"({where}): " in err.message
    assert "[redacted]" in err.message


def test_hang_before_answer_times_out(sdk, fake, settings):
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 0.5
    fake.push(Script(hang=1.5))

    err = run_error(sdk)

    assert err.code == "timeout"
    assert err.transient


def test_hang_mid_stream_times_out(sdk, fake, settings):
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 0.5
    fake.push(Script(chunks=["a", "b", "c"], hang=1.5, hang_after=1))
    seen = []

    with pytest.raises(ProviderError) as info:
        run(sdk, on_text=lambda delta, n: seen.append(delta))

    assert info.value.code == "timeout"
    assert seen == ["a"]


def test_connection_refused(sdk, fake, settings):
    setattr(settings, f"{sdk.setting}_BASE_URL", f"http://127.0.0.1:{free_port()}")

    err = run_error(sdk)

    assert err.code == "connection"
    assert err.transient


def test_cancellation_is_not_mapped(sdk, fake):
    """An outer asyncio.timeout (the worker's job limit) must surface as TimeoutError, untouched."""
    fake.push(Script(chunks=["a", "b", "c"], hang=1.0, hang_after=1))
    provider = providers.get_provider(sdk.name)

    async def go():
        try:
            async with asyncio.timeout(0.3):
                await provider.stream(request(sdk), lambda delta, n: None)
        finally:
            await provider.aclose()

    with pytest.raises(TimeoutError):
        asyncio.run(go())


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdk", "reason"),
    [("anthropic", "refusal"), ("gemini", "SAFETY"), ("gemini", "PROHIBITED_CONTENT"), ("gemini", "BLOCKLIST")],
    indirect=["sdk"],
)
def test_refusal_is_permanent(sdk, fake, reason):
    fake.push(Script(chunks=["I can't"], stop_reason=reason))

    err = run_error(sdk)

    assert err.code == "refused"
    assert not err.transient
    assert reason.lower() in err.message


@only_gemini
def test_blocked_prompt_is_refused(sdk, fake):
    fake.push(Script(block_reason="PROHIBITED_CONTENT"))

    err = run_error(sdk)

    assert err.code == "refused"
    assert not err.transient
    assert "prohibited_content" in err.message


# --- the provider object ----------------------------------------------------------------------


def test_provider_metadata(sdk, fake, settings):
    provider = providers.get_provider(sdk.name)

    assert isinstance(provider, sdk.cls)
    assert provider.entry is catalogue.get(sdk.name)  # the facts come from the catalogue
    assert provider.name == sdk.name
    assert provider.label == sdk.label
    assert provider.demo is False
    assert provider.is_configured()
    assert provider.max_temperature == sdk.max_temperature
    assert provider.max_concurrency == sdk.concurrency
    assert [(m.name, m.max_tokens) for m in provider.models()] == list(sdk.model_limits)
    assert provider.model(sdk.model).max_tokens == sdk.model_limits[0][1]
    for model, input_tokens, output_tokens, cost in sdk.costs:
        assert provider.cost(model, input_tokens, output_tokens) == cost

    setattr(settings, f"{sdk.setting}_API_KEY", "")
    assert providers.get_provider(sdk.name) is None


def test_one_client_per_provider(sdk, fake):
    provider = providers.get_provider(sdk.name)

    async def go():
        await provider.stream(request(sdk), lambda delta, n: None)
        first = provider._client
        await provider.stream(request(sdk), lambda delta, n: None)
        assert provider._client is first
        await provider.aclose()
        assert provider._client is None

    asyncio.run(go())
    assert fake.calls == 2


@only_anthropic
def test_many_calls_in_flight_share_small_connection_pools(sdk, fake, settings):
    """Up to ANTHROPIC_MAX_CONCURRENCY calls in flight: the one client spreads them over
    pools of ~32 connections (httpcore walks a whole pool per request), keeping each alive."""
    settings.ANTHROPIC_MAX_CONCURRENCY = 100
    provider = providers.get_provider(sdk.name)

    async def go():
        texts = [await provider.stream(request(sdk), lambda delta, n: None) for _ in range(8)]
        pools = provider._client._client._transport.pools
        connections = [len(pool._pool.connections) for pool in pools]
        await provider.aclose()
        return texts, connections

    texts, connections = asyncio.run(go())
    assert {result.text for result in texts} == {"word0 word1 word2 word3 word4 "}
    # 4 pools for 100; 8 calls one after the other: two per pool, on one kept-alive connection each.
    assert connections == [1, 1, 1, 1]
    assert fake.calls == 8


@only_anthropic
def test_a_proxy_in_the_environment_keeps_the_sdk_transport(sdk, fake, settings, monkeypatch):
    settings.ANTHROPIC_MAX_CONCURRENCY = 100
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    provider = providers.get_provider(sdk.name)

    async def go():
        result = await provider.stream(request(sdk), lambda delta, n: None)
        transport = provider._client._client._transport
        await provider.aclose()
        return result, transport

    result, transport = asyncio.run(go())
    assert result.stop_reason == "end_turn"
    assert not hasattr(transport, "pools")
