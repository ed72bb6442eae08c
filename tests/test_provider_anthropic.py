"""AnthropicProvider driving the real anthropic SDK against the local fake server."""

import asyncio
from decimal import Decimal

import pytest

from eval import providers
from eval.providers.anthropic import AnthropicProvider, retry_after_from_headers
from eval.providers.base import GenerationRequest
from eval.providers.errors import ProviderError
from tests.fakes.llm_server import FakeLLMServer, Script
from tests.helpers import free_port

KEY = "sk-ant-test-secret-key-0123456789"


@pytest.fixture(scope="module")
def fake_server():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server, settings):
    fake_server.clear()
    fake_server.default = Script()
    settings.ANTHROPIC_API_KEY = KEY
    settings.ANTHROPIC_BASE_URL = fake_server.url
    settings.ANTHROPIC_MODELS = ["claude-test-1:1000", "claude-test-2"]
    settings.ANTHROPIC_MAX_CONCURRENCY = 7
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 5
    providers.reset()
    yield fake_server
    providers.reset()


def request(**overrides):
    fields = {"model": "claude-test-1", "prompt": "Say hello", "max_tokens": 100}
    fields.update(overrides)
    return GenerationRequest(**fields)


def run(req=None, on_text=None):
    """Stream one request through a fresh provider; returns (result, [(delta, tokens_so_far)])."""
    provider = providers.get_provider("anthropic")
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
    assert result.stop_reason == "end_turn"
    assert result.input_tokens == 9
    assert result.output_tokens == 4
    assert seen == [("Hel", 1), ("lo ", 2), ("world", 3)]
    assert fake.calls == 1


def test_sends_key_model_max_tokens_system_and_temperature(fake):
    run(request(system="Be terse.", temperature=0.3, max_tokens=321, prompt="Hi there"))

    sent = fake.last
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["anthropic-version"]
    assert sent.body["model"] == "claude-test-1"
    assert sent.body["max_tokens"] == 321
    assert sent.body["system"] == "Be terse."
    assert sent.body["temperature"] == 0.3
    assert sent.body["stream"] is True
    assert sent.body["messages"] == [{"role": "user", "content": "Hi there"}]


def test_leaves_out_system_and_temperature_when_not_given(fake):
    run()

    assert "system" not in fake.last.body
    assert "temperature" not in fake.last.body


def test_max_tokens_stop_reason_is_kept(fake):
    fake.push(Script(chunks=["cut"], stop_reason="max_tokens"))

    result, _ = run()

    assert (result.text, result.stop_reason) == ("cut", "max_tokens")


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
    assert err.message.startswith("Anthropic") or err.message.startswith("The request")
    assert fake.calls == 1  # the SDK does not retry: the lifecycle owns retries


def test_rate_limit_reports_retry_after(fake):
    fake.push(Script(status=429, retry_after=7))

    err = run_error()

    assert err.code == "rate_limited"
    assert err.retry_after == 7.0
    assert err.message.startswith("Anthropic rate limit reached (HTTP 429)")


def test_retry_after_ms_wins_over_retry_after(fake):
    fake.push(Script(status=529, retry_after=30, retry_after_ms=1500))

    err = run_error()

    assert err.code == "overloaded"
    assert err.retry_after == 1.5


def test_no_retry_after_without_header(fake):
    fake.push(Script(status=500))

    assert run_error().retry_after is None


def test_retry_after_parsing():
    assert retry_after_from_headers({"retry-after-ms": "250"}) == 0.25
    assert retry_after_from_headers({"retry-after": "12"}) == 12.0
    assert retry_after_from_headers({"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}) > 0
    assert retry_after_from_headers({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}) == 0.0
    assert retry_after_from_headers({"retry-after": "soon"}) is None
    assert retry_after_from_headers({}) is None


def test_stream_ended_before_message_stop_is_incomplete(fake):
    fake.push(Script(chunks=["a", "b", "c"], cut_after=2))

    err = run_error()

    assert err.code == "stream_incomplete"
    assert err.transient


def test_dropped_connection_mid_stream_is_incomplete(fake):
    fake.push(Script(chunks=["a", "b", "c"], abort_after=1))

    err = run_error()

    assert err.code == "stream_incomplete"
    assert err.transient


def test_error_event_mid_stream(fake):
    fake.push(Script(chunks=["a", "b"], error_after=1, error_type="overloaded_error"))

    err = run_error()

    assert err.code == "overloaded"
    assert err.transient
    assert err.status is None
    assert "mid-stream" in err.message


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
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{free_port()}"

    err = run_error()

    assert err.code == "connection"
    assert err.transient


def test_refusal_is_permanent(fake):
    fake.push(Script(chunks=["I can't"], stop_reason="refusal"))

    err = run_error()

    assert err.code == "refused"
    assert not err.transient


def test_api_key_echoed_by_the_server_is_redacted(fake):
    fake.push(Script(status=401, error_message=f"invalid x-api-key {KEY}"))

    err = run_error()

    assert err.code == "auth"
    assert "[redacted]" in err.message


def test_provider_metadata(fake, settings):
    provider = providers.get_provider("anthropic")

    assert isinstance(provider, AnthropicProvider)
    assert provider.name == "anthropic"
    assert provider.label == "Anthropic Claude"
    assert provider.is_configured()
    assert provider.max_temperature == 1.0
    assert provider.max_concurrency == 7
    assert [(m.name, m.max_tokens) for m in provider.models()] == [("claude-test-1", 1000), ("claude-test-2", 8192)]
    assert provider.cost("claude-sonnet-4-5", 1_000_000, 1_000_000) == Decimal("18")
    assert provider.cost("claude-opus-4-5-20251101", 1_000_000, 0) == Decimal("5")
    assert provider.cost("unknown-model", 10, 10) is None

    settings.ANTHROPIC_API_KEY = ""
    assert providers.get_provider("anthropic") is None


def test_one_client_per_provider(fake):
    provider = providers.get_provider("anthropic")

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
    provider = providers.get_provider("anthropic")

    async def go():
        try:
            async with asyncio.timeout(0.3):
                await provider.stream(request(), lambda delta, n: None)
        finally:
            await provider.aclose()

    with pytest.raises(TimeoutError):
        asyncio.run(go())


def test_many_calls_in_flight_share_small_connection_pools(fake, settings):
    """Up to ANTHROPIC_MAX_CONCURRENCY calls in flight: the one client spreads them over
    pools of ~32 connections (httpcore walks a whole pool per request), keeping each alive."""
    settings.ANTHROPIC_MAX_CONCURRENCY = 100
    provider = providers.get_provider("anthropic")

    async def go():
        texts = [await provider.stream(request(), lambda delta, n: None) for _ in range(8)]
        pools = provider._client._client._transport.pools
        connections = [len(pool._pool.connections) for pool in pools]
        await provider.aclose()
        return texts, connections

    texts, connections = asyncio.run(go())
    assert {result.text for result in texts} == {"word0 word1 word2 word3 word4 "}
    # 4 pools for 100; 8 calls one after the other: two per pool, on one kept-alive connection each.
    assert connections == [1, 1, 1, 1]
    assert fake.calls == 8


def test_a_proxy_in_the_environment_keeps_the_sdk_transport(fake, settings, monkeypatch):
    settings.ANTHROPIC_MAX_CONCURRENCY = 100
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    provider = providers.get_provider("anthropic")

    async def go():
        result = await provider.stream(request(), lambda delta, n: None)
        transport = provider._client._client._transport
        await provider.aclose()
        return result, transport

    result, transport = asyncio.run(go())
    assert result.stop_reason == "end_turn"
    assert not hasattr(transport, "pools")
