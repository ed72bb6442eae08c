"""The worker calling the real Anthropic and Gemini SDKs against the local fake:
retries, backoff and permanent failures as the job row records them."""

import asyncio

import pytest

from eval.jobs import create
from eval.models import JobStatus, LLMJob
from eval.worker.service import serve
from tests.fakes.llm_server import FakeLLMServer, Script
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def anthropic(fast_jobs, fake):
    fast_jobs.ANTHROPIC_API_KEY = "test-anthropic-key"
    fast_jobs.ANTHROPIC_BASE_URL = fake.url
    fast_jobs.ANTHROPIC_MODELS = ["claude-test-1:4096"]
    fast_jobs.PROVIDER_REQUEST_TIMEOUT_SECONDS = 2
    return fake


@pytest.fixture
def gemini(fast_jobs, fake, monkeypatch):
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    fast_jobs.GEMINI_API_KEY = "test-gemini-key"
    fast_jobs.GEMINI_BASE_URL = fake.url
    fast_jobs.GEMINI_MODELS = ["gemini-test-1:4096"]
    fast_jobs.PROVIDER_REQUEST_TIMEOUT_SECONDS = 2
    return fake


def run(task, provider="anthropic", model="claude-test-1", **params):
    job, _ = create.create_job(task=task, provider=provider, model=model, params=params or None)
    asyncio.run(serve(once=True))
    return LLMJob.objects.get(pk=job.pk)


def test_a_streamed_anthropic_answer_is_recorded_with_usage_and_cost(anthropic, task):
    anthropic.push(chunks=["Hello", ", ", "world"], input_tokens=7, output_tokens=3)
    job = run(task, max_tokens=50, system="Be brief.")
    assert (job.status, job.output, job.stop_reason) == (JobStatus.SUCCEEDED, "Hello, world", "end_turn")
    assert (job.input_tokens, job.output_tokens, job.attempts) == (7, 3, 1)
    sent = anthropic.last.body
    assert (sent["model"], sent["max_tokens"], sent["system"], sent["stream"]) == (
        "claude-test-1",
        50,
        "Be brief.",
        True,
    )
    assert sent["messages"][0]["content"] == task.prompt
    assert anthropic.last.headers["authorization"] == "Bearer test-anthropic-key"


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        ({"status": 429, "retry_after_ms": 50}, "rate_limited"),
        ({"status": 529}, "overloaded"),
        ({"status": 500}, "server_error"),
        ({"cut_after": 2}, "stream_incomplete"),
        ({"hang": 5}, "timeout"),
    ],
)
def test_a_transient_failure_is_retried_and_then_succeeds(anthropic, task, failure, code, settings):
    settings.JOB_MAX_ATTEMPTS = 1  # first: with no attempts left, the same failure is final and named
    anthropic.push(Script(**failure))
    failed = run(task)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, code)
    settings.JOB_MAX_ATTEMPTS = 3
    anthropic.clear()
    anthropic.push(Script(**failure), Script(chunks=["fine"]))
    job = run(task)
    assert (job.status, job.output, job.attempts) == (JobStatus.SUCCEEDED, "fine", 2)
    assert job.error_code == "" and anthropic.calls == 2  # a success carries no error


@pytest.mark.parametrize(
    ("status", "code"), [(400, "bad_request"), (401, "auth"), (403, "auth"), (404, "not_found"), (413, "too_large")]
)
def test_a_permanent_failure_fails_at_once(anthropic, task, status, code):
    anthropic.push(status=status, error_message="nope")
    job = run(task)
    assert (job.status, job.error_code, job.attempts) == (JobStatus.FAILED, code, 1)
    assert anthropic.calls == 1
    assert "test-anthropic-key" not in job.error_message and job.error_message


def test_a_refusal_is_permanent(anthropic, task):
    anthropic.push(chunks=["I can't"], stop_reason="refusal")
    job = run(task)
    assert (job.status, job.error_code, anthropic.calls) == (JobStatus.FAILED, "refused", 1)


def test_attempts_run_out_and_the_job_fails(anthropic, task, settings):
    settings.JOB_MAX_ATTEMPTS = 3
    anthropic.push(Script(status=503), Script(status=503), Script(status=503), Script(chunks=["never"]))
    job = run(task)
    assert (job.status, job.error_code, job.attempts, anthropic.calls) == (JobStatus.FAILED, "server_error", 3, 3)


def test_a_gemini_answer_and_its_rate_limit_delay(gemini, task):
    gemini.push(Script(status=429, retry_delay="0.05s"), Script(chunks=["Bonjour", " le monde"]))
    job = run(task, provider="gemini", model="gemini-test-1", temperature=1.5)
    assert (job.status, job.output, job.attempts) == (JobStatus.SUCCEEDED, "Bonjour le monde", 2)
    assert gemini.last.headers["x-goog-api-key"] == "test-gemini-key"
    assert gemini.last.body["generationConfig"]["temperature"] == 1.5


def test_a_gemini_safety_block_is_refused(gemini, task):
    gemini.push(chunks=["..."], stop_reason="SAFETY")
    job = run(task, provider="gemini", model="gemini-test-1")
    assert (job.status, job.error_code) == (JobStatus.FAILED, "refused")


def test_the_retry_message_says_when_and_which_attempt(anthropic, task, settings, worker_thread):

    settings.JOB_RETRY_MAX_DELAY_SECONDS = 30
    anthropic.push(status=429, retry_after=3)
    job, _ = create.create_job(task=task, provider="anthropic", model="claude-test-1")
    worker = worker_thread()
    row = wait_for(
        lambda: LLMJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED, attempts=1).first(), message="requeued"
    )
    worker.stop()
    assert row.message == "Anthropic rate limit reached; retrying in 3 s (attempt 2 of 3)" or row.message.startswith(
        "Rate limited; retrying in 3 s (attempt 2 of 3)"
    )
