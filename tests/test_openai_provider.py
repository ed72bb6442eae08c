"""The `openai` provider and OpenAI-compatible endpoints, driving the REAL openai SDK
against the local fake (tests/fakes/openai_wire.py)."""

import asyncio
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from eval import providers
from eval.jobs import create
from eval.models import JobStatus, LLMJob
from eval.providers import catalogue
from eval.providers.base import GenerationRequest
from eval.providers.errors import ProviderError
from eval.providers.openai import OpenAIProvider
from eval.worker.service import serve
from tests.fakes.openai_wire import FakeOpenAIServer, Reply

ROOT = Path(__file__).resolve().parent.parent
OPENAI_KEY = "sk-openai-test-secret-0123456789"
LOCAL_KEY = "local-vllm-secret-0123456789"


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def fake(server, settings, monkeypatch):
    """`openai` at the fake, and an OpenAI-compatible endpoint `local` at the same fake."""
    with server._lock:
        server._replies.clear()
        server.requests.clear()
    monkeypatch.setenv("LOCAL_LLM_KEY", LOCAL_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/never-used")
    settings.OPENAI_API_KEY = OPENAI_KEY
    settings.OPENAI_BASE_URL = server.url + "/v1"
    settings.OPENAI_MODELS = ["gpt-4.1:32768", "gpt-5-mini:128000"]
    settings.OPENAI_COMPATIBLE_ENDPOINTS = {
        "local": {
            "base_url": server.url + "/local/v1",
            "api_key_env": "LOCAL_LLM_KEY",
            "models": ["llama3.2:8192"],
            "label": "Local vLLM",
            "max_concurrency": 8,
            "prices": {},
        }
    }
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 5
    providers.reset()
    yield server
    providers.reset()


def run(name="openai", on_text=None, **fields):
    fields.setdefault("model", "gpt-4.1" if name == "openai" else "llama3.2")
    fields.setdefault("prompt", "Say hello")
    fields.setdefault("max_tokens", 100)
    provider = providers.get_provider(name)

    async def go():
        try:
            return await provider.stream(GenerationRequest(**fields), on_text or (lambda text, tokens: None))
        finally:
            await provider.aclose()

    return asyncio.run(go())


def run_error(name="openai", **fields) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        run(name, **fields)
    return caught.value


def test_it_streams_text_usage_and_stop_reason(fake):
    fake.push(Reply(chunks=["Hel", "lo", " there"], input_tokens=7, output_tokens=3))
    seen = []
    result = run(on_text=lambda text, tokens: seen.append((text, tokens)))
    assert (result.text, result.stop_reason, result.input_tokens, result.output_tokens) == ("Hello there", "stop", 7, 3)
    assert seen == [("Hel", 1), ("lo", 2), (" there", 3)]
    body = fake.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert fake.requests[-1].path == "/v1/chat/completions"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_it_sends_system_params_and_max_completion_tokens_to_openai(fake):
    run(system="Be brief.", temperature=0.3, top_p=0.9, stop=("END", "##"), seed=42, max_tokens=55)
    body = fake.requests[-1].body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"]) == (0.3, 0.9, ["END", "##"], 42)
    assert body["max_completion_tokens"] == 55 and "max_tokens" not in body


def test_it_leaves_out_what_is_not_given_and_sends_conversations(fake):
    turns = (("user", "Hi"), ("assistant", "Hello!"), ("user", "And now?"))
    run(messages=turns)
    body = fake.requests[-1].body
    assert body["messages"] == [{"role": role, "content": content} for role, content in turns]
    assert not {"temperature", "top_p", "stop", "seed"} & set(body)


def test_an_endpoint_gets_its_own_key_url_and_max_tokens(fake):
    fake.push(Reply(chunks=["ok"]))
    result = run("local")
    record = fake.requests[-1]
    assert result.text == "ok"
    assert record.path == "/local/v1/chat/completions"
    assert record.headers["authorization"] == f"Bearer {LOCAL_KEY}"
    assert record.body["max_tokens"] == 100 and "max_completion_tokens" not in record.body
    assert "openai-organization" not in record.headers


def test_an_endpoint_without_a_key_never_gets_the_openai_key(fake, settings, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    settings.OPENAI_COMPATIBLE_ENDPOINTS = {
        "ollama": {
            "base_url": fake.url + "/ollama/v1",
            "api_key_env": "",
            "models": ["llama3.2"],
            "label": "Ollama",
            "max_concurrency": 4,
            "prices": {},
        }
    }
    run("ollama")
    assert OPENAI_KEY not in json.dumps(fake.requests[-1].headers)


def test_no_usage_from_the_server_means_no_cost(fake, settings):
    settings.MODEL_PRICES = {"llama": [1, 2]}
    fake.push(Reply(chunks=["a", "b"], usage=False))
    result = run("local")
    assert result.text == "ab" and result.input_tokens is None and result.output_tokens is None
    provider = providers.get_provider("local")
    assert provider.cost("llama3.2", None, None) is None
    assert provider.cost("llama3.2", 1_000_000, 1_000_000) == Decimal("3")


def test_openai_prices_are_known(fake):
    assert providers.get_provider("openai").cost("gpt-4.1", 1_000_000, 1_000_000) == Decimal("10")


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [(400, "bad_request", False), (401, "auth", False), (404, "not_found", False), (500, "server_error", True)],
)
def test_http_errors_are_mapped(fake, status, code, transient):
    fake.push(Reply(status=status, error_message=f"echoing {OPENAI_KEY}"))
    error = run_error()
    assert (error.code, error.transient, error.status) == (code, transient, status)
    assert OPENAI_KEY not in error.message and "[redacted]" in error.message
    assert fake.calls == 1  # max_retries=0: the engine retries, not the SDK


def test_a_429_reports_retry_after(fake):
    fake.push(Reply(status=429, retry_after="7"))
    error = run_error()
    assert (error.code, error.transient, error.retry_after) == ("rate_limited", True, 7.0)
    fake.push(Reply(status=429, retry_after="7", retry_after_ms=1500))
    assert run_error().retry_after == 1.5


def test_a_stream_cut_mid_way_is_incomplete(fake):
    fake.push(Reply(chunks=["a", "b", "c"], cut_after=2))
    seen = []
    error = run_error(on_text=lambda text, tokens: seen.append(text))
    assert (error.code, error.transient) == ("stream_incomplete", True)
    assert seen == ["a", "b"]


def test_a_dropped_connection_mid_stream_is_incomplete(fake):
    fake.push(Reply(chunks=["a", "b", "c"], abort_after=1))
    assert run_error().code == "stream_incomplete"


def test_an_error_chunk_mid_stream(fake):
    fake.push(Reply(chunks=["a", "b"], error_after=1, error_code=503))
    error = run_error()
    assert (error.code, error.transient) == ("server_error", True)


def test_content_filter_and_refusals_are_refused(fake):
    fake.push(Reply(chunks=[], finish_reason="content_filter"))
    assert run_error().code == "refused"
    fake.push(Reply(chunks=[], refusal="I can't help with that."))
    error = run_error()
    assert error.code == "refused" and "can't help" in error.message


def test_length_stop_reason_is_kept(fake):
    fake.push(Reply(chunks=["x"], finish_reason="length"))
    assert run().stop_reason == "length"


def test_a_hang_times_out(fake, settings):
    settings.PROVIDER_REQUEST_TIMEOUT_SECONDS = 0.3
    fake.push(Reply(hang=3))
    assert run_error().code == "timeout"


def test_connection_refused(fake, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    error = run_error()
    assert (error.code, error.transient) == ("connection", True)


def test_cancelling_mid_stream_stops_the_call(fake):
    fake.push(Reply(chunks=[f"w{i} " for i in range(100)], delay=0.05))
    provider = providers.get_provider("openai")
    seen = []

    async def go():
        task = asyncio.create_task(
            provider.stream(GenerationRequest(model="gpt-4.1", prompt="p", max_tokens=9), lambda t, n: seen.append(t))
        )
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await provider.aclose()

    asyncio.run(asyncio.wait_for(go(), 10))
    assert 3 <= len(seen) < 20


def test_catalogue_lists_openai_and_endpoints(fake, settings, monkeypatch):
    names = [entry.name for entry in catalogue.configured()]
    assert names[-3:] == ["openai", "local", "echo"]
    local = catalogue.get("local")
    assert (local.label, local.max_concurrency, local.models()[0].max_tokens) == ("Local vLLM", 8, 8192)
    assert isinstance(providers.get_provider("local"), OpenAIProvider)
    monkeypatch.delenv("LOCAL_LLM_KEY")
    assert catalogue.get("local") is None  # its key variable is unset: not configured
    settings.OPENAI_API_KEY = ""
    assert catalogue.get("openai") is None


def test_reasoning_models_refuse_sampling_params(fake):
    assert catalogue.OPENAI.refuses("gpt-5-mini") >= {"temperature", "top_p", "stop"}
    assert not catalogue.OPENAI.refuses("gpt-4.1")
    assert catalogue.ANTHROPIC.refuses("claude-x") == {"seed"}


def test_settings_parse_and_report_bad_endpoints():
    """OPENAI_COMPATIBLE_ENDPOINTS is read as DESIGN gives it; a bad entry is reported, naming the variable."""
    code = textwrap.dedent(
        """
        import json
        from coreproject import env
        good = json.dumps({"ollama": {"base_url": "http://localhost:11434/v1/", "models": ["llama3.2"]}})
        import os
        os.environ["X_GOOD"] = good
        os.environ["X_BAD"] = json.dumps({"openai": {"base_url": "x", "models": []}, "ok": {"models": ["m"]}})
        print(json.dumps([env.endpoints("X_GOOD"), env.endpoints("X_BAD"), env.ERRORS]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    good, bad, errors = json.loads(out.stdout)
    assert good["ollama"]["base_url"] == "http://localhost:11434/v1"
    assert good["ollama"]["label"] == "ollama" and good["ollama"]["api_key_env"] == ""
    assert bad == {}
    assert len(errors) == 2 and all(name == "X_BAD" for name, _ in errors)


def test_web_processes_never_import_the_openai_sdk():
    code = textwrap.dedent(
        """
        import os, sys, json
        os.environ["OPENAI_API_KEY"] = "k"
        endpoint = {"base_url": "http://127.0.0.1:1/v1", "models": ["m"]}
        os.environ["OPENAI_COMPATIBLE_ENDPOINTS"] = json.dumps({"vllm": endpoint})
        import django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
        django.setup()
        from django.test import Client
        import eval.urls
        from eval.providers import catalogue
        assert [e.name for e in catalogue.configured()][:2] == ["openai", "vllm"]
        print("openai" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- through the worker ---------------------------------------------------------------------


@pytest.fixture
def worker_fake(fake, fast_jobs):
    fast_jobs.PROVIDER_REQUEST_TIMEOUT_SECONDS = 5
    return fake


def run_job(task, provider, model, **params):
    job, _ = create.create_job(task=task, provider=provider, model=model, params=params or None)
    asyncio.run(serve(once=True))
    return LLMJob.objects.get(pk=job.pk)


@pytest.mark.django_db(transaction=True)
def test_the_worker_records_usage_cost_and_stop_reason(worker_fake, task):
    million = 1_000_000
    reply = Reply(chunks=["Hi", " there"], input_tokens=million, output_tokens=million, finish_reason="length")
    worker_fake.push(reply)
    job = run_job(task, "openai", "gpt-4.1", seed=3, stop=["END"])
    assert (job.status, job.output, job.stop_reason) == (JobStatus.SUCCEEDED, "Hi there", "length")
    assert (job.input_tokens, job.output_tokens, job.cost_usd) == (1_000_000, 1_000_000, Decimal("10"))
    body = worker_fake.requests[-1].body
    assert (body["seed"], body["stop"], body["messages"]) == (3, ["END"], [{"role": "user", "content": task.prompt}])


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_cost_null_without_usage_and_retries_a_429(worker_fake, task, settings):
    settings.MODEL_PRICES = {"llama": [1, 1]}
    worker_fake.push(Reply(status=429, retry_after_ms=20), Reply(chunks=["ok"], usage=False))
    job = run_job(task, "local", "llama3.2")
    assert (job.status, job.attempts, job.output) == (JobStatus.SUCCEEDED, 2, "ok")
    assert (job.input_tokens, job.output_tokens, job.cost_usd) == (None, None, None)  # unknown, never $0
