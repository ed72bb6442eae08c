"""JSON log lines carry job_id and worker_id; secrets never reach a log line."""

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coreproject import logformat
from coreproject.logformat import JobContextFilter, JsonFormatter, RedactSecretsFilter
from eval.jobs import create
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
ANTHROPIC = "sk-ant-api03-TESTSECRETVALUE-abcdef0123456789"
GEMINI = "AIzaSyTESTGEMINIKEY-0123456789abcdef"
METRICS = "metrics-token-TEST-0123456789"
SECRET_KEY = "django-secret-TEST-0123456789-abcdefghijklmnopqrstuvwxyz"
DB_PASSWORD = "pg-pass-TEST-0123456789"


class Captured:
    """A handler set up as in settings.LOGGING (both filters, JSON lines)."""

    def __init__(self, logger_name="eval.testlog"):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(JobContextFilter())
        self.handler.addFilter(RedactSecretsFilter())
        self.logger = logging.getLogger(logger_name)

    def __enter__(self):
        self.logger.addHandler(self.handler)
        self.old_level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.old_level)

    @property
    def text(self):
        return self.stream.getvalue()

    @property
    def lines(self):
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def secrets_set(settings, monkeypatch):
    settings.ANTHROPIC_API_KEY = ANTHROPIC
    settings.GEMINI_API_KEY = GEMINI
    settings.METRICS_TOKEN = METRICS
    settings.SECRET_KEY = SECRET_KEY
    monkeypatch.setenv("DATABASE_URL", f"postgres://eval:{DB_PASSWORD}@db.internal:5432/eval")


def test_settings_put_both_filters_on_the_handler(settings):
    handler = settings.LOGGING["handlers"]["console"]
    assert handler["filters"] == ["job_context", "redact_secrets"]
    root = logging.getLogger()
    kinds = {type(f) for h in root.handlers for f in h.filters}
    assert {JobContextFilter, RedactSecretsFilter} <= kinds
    # Django's loggers go through the same handler, not their own unfiltered
    # console and mail handlers (pytest adds capture handlers of its own).
    streams = [h for h in logging.getLogger("django").handlers if type(h) is logging.StreamHandler]
    assert streams
    assert all(any(isinstance(f, RedactSecretsFilter) for f in h.filters) for h in streams)
    assert not [h for h in logging.getLogger("django").handlers if type(h).__module__.startswith("django")]


def test_bound_context_puts_job_and_worker_on_every_line_of_that_task():
    log = logging.getLogger("eval.testlog.deep.in.a.provider")

    async def job(job_id):
        logformat.bind(job_id=job_id, worker_id="host-1-abc")
        log.info("streaming")
        await asyncio.sleep(0)
        log.warning("retrying in %d s", 2)

    async def main():
        log.info("worker loop line")
        await asyncio.gather(asyncio.create_task(job("job-a")), asyncio.create_task(job("job-b")))

    with Captured("eval.testlog") as captured:
        asyncio.run(main())
    lines = captured.lines
    assert len(lines) == 5
    assert "job_id" not in lines[0]
    job_lines = lines[1:]
    assert sorted(line["job_id"] for line in job_lines) == ["job-a", "job-a", "job-b", "job-b"]
    assert all(line["worker_id"] == "host-1-abc" for line in job_lines)
    assert {line["message"] for line in job_lines} == {"streaming", "retrying in 2 s"}


def test_explicit_extra_wins_and_process_worker_id_fills_the_rest():
    log = logging.getLogger("eval.testlog")
    logformat.set_process_worker_id("vm-7-0f0f0f")
    try:
        with Captured() as captured:
            log.warning("lease lost", extra={"job_id": "j-1"})
            log.info("own worker", extra={"job_id": "j-2", "worker_id": "other"})
    finally:
        logformat.set_process_worker_id(None)
    first, second = captured.lines
    assert first["job_id"] == "j-1" and first["worker_id"] == "vm-7-0f0f0f"
    assert second["worker_id"] == "other"


def test_secret_values_are_redacted_everywhere(secrets_set):
    log = logging.getLogger("eval.testlog")
    with Captured() as captured:
        log.info("key in the message %s", ANTHROPIC)
        log.info("dict arg %r", {"api_key": GEMINI, "token": METRICS})
        log.info("the secret key is " + SECRET_KEY)
        log.info("db at postgres://eval:%s@db.internal:5432/eval", DB_PASSWORD)
        log.info("just the password: %s", DB_PASSWORD)
        log.info("job line", extra={"job_id": "j", "model": f"model-{ANTHROPIC}"})
        try:
            raise RuntimeError(f"401 for key {GEMINI}")
        except RuntimeError:
            log.exception("provider call failed")
    text = captured.text
    for secret in (ANTHROPIC, GEMINI, METRICS, SECRET_KEY, DB_PASSWORD):
        assert secret not in text
    lines = captured.lines
    assert lines[0]["message"] == "key in the message [REDACTED]"
    assert "postgres://eval:[REDACTED]@db.internal:5432/eval" in lines[3]["message"]
    assert lines[4]["message"] == "just the password: [REDACTED]"
    assert lines[5]["model"] == "model-[REDACTED]"
    assert "RuntimeError: 401 for key [REDACTED]" in lines[6]["exc"]


def test_header_and_url_shaped_credentials_are_redacted_even_when_unknown():
    redact = logformat.redact
    assert redact("Authorization: Bearer abc.def-ghi", []) == "Authorization: Bearer [REDACTED]"
    assert redact("{'x-api-key': 'sk-unknown-1'}", []) == "{'x-api-key': '[REDACTED]'}"
    assert redact("GET /v1/models?key=AIzaUnknown&alt=sse", []) == "GET /v1/models?key=[REDACTED]&alt=sse"
    assert redact("redis://:hunter22@cache:6379/0", []) == "redis://:[REDACTED]@cache:6379/0"
    assert redact("nothing secret here: job 42 took 3 s", []) == "nothing secret here: job 42 took 3 s"


def test_text_format_is_redacted_too(secrets_set):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecretsFilter())
    log = logging.getLogger("eval.testlog.text")
    log.addHandler(handler)
    try:
        try:
            raise ValueError(METRICS)
        except ValueError:
            log.error("bad token %s", METRICS, exc_info=True)
    finally:
        log.removeHandler(handler)
    assert METRICS not in stream.getvalue()
    assert "ERROR bad token [REDACTED]" in stream.getvalue()


def test_a_real_process_logs_json_without_secrets(tmp_path):
    """As deployed: LOG_FORMAT=json, secrets in the environment, settings.LOGGING."""
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "ANTHROPIC_API_KEY": ANTHROPIC,
        "GEMINI_API_KEY": GEMINI,
        "METRICS_TOKEN": METRICS,
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_LOCAL_DIR": str(tmp_path / "local"),
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
    }
    code = f"""
import logging, django
django.setup()
from django.conf import settings
log = logging.getLogger("eval.worker.executor")
log.warning("calling with %s and %s", settings.ANTHROPIC_API_KEY, settings.GEMINI_API_KEY,
            extra={{"job_id": "0b6f7f2e", "worker_id": "vm-1-abc"}})
logging.getLogger("django.request").error("token %s key %s", {METRICS!r}, settings.SECRET_KEY)
try:
    raise ConnectionError("refused: " + settings.ANTHROPIC_API_KEY)
except ConnectionError:
    logging.getLogger("eval.x").exception("boom")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    output = result.stdout + result.stderr
    for secret in (ANTHROPIC, GEMINI, METRICS, SECRET_KEY):
        assert secret not in output
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 3, result.stderr
    assert lines[0]["message"] == "calling with [REDACTED] and [REDACTED]"
    assert lines[0]["job_id"] == "0b6f7f2e" and lines[0]["worker_id"] == "vm-1-abc"
    assert lines[1]["logger"] == "django.request"
    assert "[REDACTED]" in lines[2]["exc"]


@pytest.mark.django_db(transaction=True)
def test_worker_job_lines_carry_job_and_worker_id(fast_jobs, task, worker_thread):
    """Every line the worker logs about a job names the job and the worker."""

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(JobContextFilter())
    handler.addFilter(RedactSecretsFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        job, _ = create.create_job(task=task, provider="echo", model="echo", params={"max_tokens": 8})
        worker = worker_thread(transport="db", concurrency=2)
        wait_for(lambda: type(job).objects.get(pk=job.pk).status == "succeeded", timeout=20)
        worker.stop()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    job_lines = [
        line
        for line in lines
        if line.get("job_id") == str(job.pk) and line["logger"].startswith(("eval.worker", "eval.transports"))
    ]
    assert job_lines, lines
    assert all(line.get("worker_id") for line in job_lines), job_lines
