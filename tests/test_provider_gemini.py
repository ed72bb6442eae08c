"""GeminiProvider driving the real google-genai SDK against the local fake server."""

import asyncio
from decimal import Decimal

import pytest

from eval import providers
from eval.providers.base import GenerationRequest
from eval.providers.errors import ProviderError
from eval.providers.gemini import GeminiProvider, retry_delay_from_error
from tests.fakes.llm_server import FakeLLMServer, Script
from tests.helpers import free_port

KEY = "AIza-test-secret-key-0123456789"


@pytest.fixture(scope="module")
def fake_server():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server, settings, monkeypatch):
    for name in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    fake_server.clear()
    fake_server.default = Script()
    settings.GEMINI_API_KEY = KEY
    settings.GEMINI_BASE_URL = fake_server.url
    settings.GEMINI_MODELS = ["gemini-test:2048", "gemini-other"]
    settings.GEMINI_MAX_CONCURRENCY = 9
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 5
    providers.reset()
    yield fake_server
    providers.reset()


def request(**overrides):
    fields = {"model": "gemini-test", "prompt": "Say hello", "max_tokens": 100}
    fields.update(overrides)
    return GenerationRequest(**fields)


def run(req=None, on_text=None):
    """Stream one request through a fresh provider; returns (result, [(delta, tokens_so_far)])."""
    provider = providers.get_provider("gemini")
    seen = []

    async def go():
        try:
            return await provider.stream(req or request(), on_text or (lambda delta, n: seen.append((delta, n))))
        finally:
            await provider.aclose()

    return asyncio.run(go()), seen


def run_error(req=None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        run(req)
    err = info.value
    assert KEY not in str(err)
    assert KEY not in repr(err.args)
    return err


def test_streams_text_usage_and_stop_reason(fake):
    fake.push(Script(chunks=["Hel", "lo ", "world"], input_tokens=9, output_tokens=4))

    result, seen = run()

    assert result.text == "Hello world"
    assert result.stop_reason == "stop"
    assert result.input_tokens == 9
    assert result.output_tokens == 4
    assert [delta for delta, _ in seen] == ["Hel", "lo ", "world"]
    assert [n for _, n in seen] == [1, 2, 4]  # the last chunk carries the real usage
    assert fake.calls == 1


def test_sends_key_model_max_tokens_system_and_temperature(fake):
    run(request(system="Be terse.", temperature=1.5, max_tokens=321, prompt="Hi there"))

    sent = fake.last
    assert sent.path == "/v1/models/gemini-test:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.body["generationConfig"] == {"maxOutputTokens": 321, "temperature": 1.5}
    assert sent.body["systemInstruction"]["parts"] == [{"text": "Be terse."}]
    assert sent.body["contents"] == [{"parts": [{"text": "Hi there"}], "role": "user"}]


def test_leaves_out_system_and_temperature_when_not_given(fake):
    run()

    assert "systemInstruction" not in fake.last.body
    assert fake.last.body["generationConfig"] == {"maxOutputTokens": 100}


def test_vertex_env_var_is_ignored(fake, monkeypatch):
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")

    result, _ = run()

    assert result.stop_reason == "stop"
    assert fake.last.headers["x-goog-api-key"] == KEY


def test_max_tokens_stop_reason_is_lowercased(fake):
    fake.push(Script(chunks=["cut"], stop_reason="MAX_TOKENS"))

    result, _ = run()

    assert (result.text, result.stop_reason) == ("cut", "max_tokens")


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (400, "bad_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "not_found", False),
        (413, "too_large", False),
        (429, "rate_limited", True),
        (500, "server_error", True),
        (503, "server_error", True),
        (504, "server_error", True),
        (529, "overloaded", True),
    ],
)
def test_http_errors_are_mapped(fake, status, code, transient):
    fake.push(Script(status=status))

    err = run_error()

    assert err.code == code
    assert err.transient is transient
    assert err.status == status
    assert f"HTTP {status}" in err.message
    assert fake.calls == 1


def test_rate_limit_retry_delay_comes_from_the_body(fake):
    fake.push(Script(status=429, retry_delay="7s"))

    err = run_error()

    assert err.code == "rate_limited"
    assert err.retry_after == 7.0
    assert err.message.startswith("Gemini rate limit reached (HTTP 429)")


def test_rate_limit_falls_back_to_retry_after_header(fake):
    fake.push(Script(status=429, retry_after=3))

    assert run_error().retry_after == 3.0


def test_retry_delay_parsing():
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}
    assert retry_delay_from_error({"error": {"details": [info]}}) == 1.5
    assert retry_delay_from_error([{"error": {"details": [info]}}]) == 1.5
    assert retry_delay_from_error({"error": {"details": [{**info, "retryDelay": {"seconds": 2}}]}}) == 2.0
    assert retry_delay_from_error({"error": {"details": [{"@type": "other"}]}}) is None
    assert retry_delay_from_error(None) is None


def test_stream_without_finish_reason_is_incomplete(fake):
    fake.push(Script(chunks=["a", "b", "c"], cut_after=2))

    err = run_error()

    assert err.code == "stream_incomplete"
    assert err.transient


def test_dropped_connection_mid_stream_is_incomplete(fake):
    fake.push(Script(chunks=["a", "b", "c"], abort_after=1))

    err = run_error()

    assert err.code == "stream_incomplete"
    assert err.transient


def test_error_frame_mid_stream(fake):
    fake.push(Script(chunks=["a", "b"], error_after=1, status=503))

    err = run_error()

    assert err.code == "server_error"
    assert err.transient


def test_hang_before_answer_times_out(fake, settings):
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 0.5
    fake.push(Script(hang=1.5))

    err = run_error()

    assert err.code == "timeout"
    assert err.transient


def test_hang_mid_stream_times_out(fake, settings):
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 0.5
    fake.push(Script(chunks=["a", "b", "c"], hang=1.5, hang_after=1))
    seen = []

    with pytest.raises(ProviderError) as info:
        run(on_text=lambda delta, n: seen.append(delta))

    assert info.value.code == "timeout"
    assert seen == ["a"]


def test_connection_refused(fake, settings):
    settings.GEMINI_BASE_URL = f"http://127.0.0.1:{free_port()}"

    err = run_error()

    assert err.code == "connection"
    assert err.transient


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST"])
def test_safety_finish_is_refused(fake, reason):
    fake.push(Script(chunks=["I"], stop_reason=reason))

    err = run_error()

    assert err.code == "refused"
    assert not err.transient
    assert reason.lower() in err.message


def test_blocked_prompt_is_refused(fake):
    fake.push(Script(block_reason="PROHIBITED_CONTENT"))

    err = run_error()

    assert err.code == "refused"
    assert not err.transient


def test_api_key_echoed_by_the_server_is_redacted(fake):
    fake.push(Script(status=400, error_message=f"API key not valid: {KEY}"))

    err = run_error()

    assert err.code == "bad_request"
    assert "[redacted]" in err.message


def test_provider_metadata(fake, settings):
    provider = providers.get_provider("gemini")

    assert isinstance(provider, GeminiProvider)
    assert provider.name == "gemini"
    assert provider.is_configured()
    assert provider.max_temperature == 2.0
    assert provider.max_concurrency == 9
    assert [(m.name, m.max_tokens) for m in provider.models()] == [("gemini-test", 2048), ("gemini-other", 8192)]
    assert provider.cost("gemini-2.5-flash-lite", 1_000_000, 1_000_000) == Decimal("0.5")
    assert provider.cost("gemini-2.5-flash", 1_000_000, 1_000_000) == Decimal("2.8")
    assert provider.cost("unknown-model", 10, 10) is None

    settings.GEMINI_API_KEY = ""
    assert providers.get_provider("gemini") is None


def test_one_client_per_provider(fake):
    provider = providers.get_provider("gemini")

    async def go():
        await provider.stream(request(), lambda delta, n: None)
        first = provider._client
        await provider.stream(request(), lambda delta, n: None)
        assert provider._client is first
        await provider.aclose()
        assert provider._client is None

    asyncio.run(go())
    assert fake.calls == 2


def test_cancellation_is_not_mapped(fake):
    """An outer asyncio.timeout (the worker's job limit) must surface as TimeoutError, untouched."""
    fake.push(Script(chunks=["a", "b", "c"], hang=1.0, hang_after=1))
    provider = providers.get_provider("gemini")

    async def go():
        try:
            async with asyncio.timeout(0.3):
                await provider.stream(request(), lambda delta, n: None)
        finally:
            await provider.aclose()

    with pytest.raises(TimeoutError):
        asyncio.run(go())
