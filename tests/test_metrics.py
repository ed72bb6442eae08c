"""/metrics: who may read it, what it says, and event counters summed across
processes (prometheus-client multiprocess mode), down to a real gunicorn with
several workers."""

import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from eval import metrics
from eval.metrics import collector, events, views
from eval.models import LLMJob, WorkerHeartbeat
from tests.conftest import test_database_url
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    plain_http.METRICS_TOKEN = TOKEN


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())))


def error_code(response):
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]["code"]


# --- access ------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_without_token_gets_401():
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


@pytest.mark.django_db
def test_wrong_token_gets_403():
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


@pytest.mark.django_db
def test_no_token_configured_refuses_every_bearer(settings):
    settings.METRICS_TOKEN = ""
    for header in ("Bearer ", "Bearer x", "Basic abc"):
        response = Client().get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 403, header
        assert error_code(response) == "forbidden"


def test_logged_in_non_staff_gets_403(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


def test_staff_session_reads_metrics(client, staff):
    client.force_login(staff)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "eval_jobs{" in response.content.decode()


@pytest.mark.django_db
def test_token_reads_metrics_and_post_is_refused():
    client = Client()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer   {TOKEN}  ").status_code == 200
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_token_is_compared_in_constant_time(monkeypatch, db):
    calls = []
    real = views.hmac.compare_digest
    monkeypatch.setattr(views.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    Client().get("/metrics", HTTP_AUTHORIZATION="Bearer guess")
    assert calls == [(b"guess", TOKEN.encode())]


# --- database gauges -------------------------------------------------------------------


def test_jobs_by_status_oldest_queued_and_workers_online(make_task):
    task = make_task()
    now = timezone.now()
    for status, count in (("queued", 2), ("running", 1), ("succeeded", 3), ("failed", 1)):
        for _ in range(count):
            LLMJob.objects.create(task=task, provider="echo", model="echo", status=status, available_at=now)
    LLMJob.objects.filter(status="queued").update(created_at=now - timedelta(seconds=90))
    heartbeat = {"hostname": "h", "pid": 1, "started_at": now}
    WorkerHeartbeat.objects.create(worker_id="fresh", last_seen=now - timedelta(seconds=3), **heartbeat)
    WorkerHeartbeat.objects.create(worker_id="stale", last_seen=now - timedelta(seconds=45), **heartbeat)
    WorkerHeartbeat.objects.create(
        worker_id="stopped", last_seen=now - timedelta(seconds=1), stopped_at=now, **heartbeat
    )

    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    found = samples(response.content.decode())
    assert value(found, "eval_jobs", status="queued") == 2
    assert value(found, "eval_jobs", status="running") == 1
    assert value(found, "eval_jobs", status="succeeded") == 3
    assert value(found, "eval_jobs", status="failed") == 1
    assert value(found, "eval_jobs", status="cancelled") == 0
    assert 89 <= value(found, "eval_oldest_queued_job_age_seconds") < 200
    assert value(found, "eval_workers_online") == 1
    assert value(found, "eval_metrics_database_up") == 1


@pytest.mark.django_db
def test_empty_queue_reads_zero():
    found = samples(collector.render().decode())
    assert value(found, "eval_oldest_queued_job_age_seconds") == 0
    assert value(found, "eval_jobs", status="queued") == 0


def test_database_trouble_is_a_gauge_not_a_500(monkeypatch, db):
    def broken(self):
        raise RuntimeError("database down")
        yield  # pragma: no cover

    monkeypatch.setattr(collector.DatabaseCollector, "collect", broken)
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert value(samples(response.content.decode()), "eval_metrics_database_up") == 0


# --- event counters in one process -------------------------------------------------------


def _event(name, **labels):
    return events.EVENTS.get_sample_value(name, labels) or 0


plain_mode = pytest.mark.skipif(events.MULTIPROC_DIR is not None, reason="this process runs in multiprocess mode")


@plain_mode
def test_observe_job_and_poll_in_one_process(db):
    labels = {"provider": "anthropic", "model": "claude-x"}
    before = {
        "count": _event("eval_job_duration_seconds_count", **labels, status="succeeded"),
        "le5": _event("eval_job_duration_seconds_bucket", **labels, status="succeeded", le="5.0"),
        "wait": _event("eval_job_queue_wait_seconds_count", provider="anthropic"),
        "in": _event("eval_tokens_total", **labels, direction="input"),
        "out": _event("eval_tokens_total", **labels, direction="output"),
        "cost": _event("eval_cost_usd_total", **labels),
        "err": _event("eval_provider_errors_total", provider="anthropic", code="rate_limited"),
        "304": _event("eval_poll_requests_total", code="304"),
    }
    metrics.observe_job("anthropic", "claude-x", "succeeded", None, 3.2, 0.4, 100, 250, "0.0123")
    metrics.observe_job("anthropic", "claude-x", "queued", "rate_limited", 0.3, None, None, None, None)
    metrics.observe_poll(304)
    metrics.observe_poll("200")

    assert _event("eval_job_duration_seconds_count", **labels, status="succeeded") == before["count"] + 1
    assert _event("eval_job_duration_seconds_bucket", **labels, status="succeeded", le="5.0") == before["le5"] + 1
    assert _event("eval_job_queue_wait_seconds_count", provider="anthropic") == before["wait"] + 1
    assert _event("eval_tokens_total", **labels, direction="input") == before["in"] + 100
    assert _event("eval_tokens_total", **labels, direction="output") == before["out"] + 250
    assert _event("eval_cost_usd_total", **labels) == pytest.approx(before["cost"] + 0.0123)
    assert _event("eval_provider_errors_total", provider="anthropic", code="rate_limited") == before["err"] + 1
    assert _event("eval_poll_requests_total", code="304") == before["304"] + 1
    # And the scrape shows them.
    text = collector.render().decode()
    assert 'eval_poll_requests_total{code="304"}' in text
    assert 'eval_tokens_total{direction="output",model="claude-x",provider="anthropic"}' in text


@plain_mode
def test_odd_values_are_skipped_and_the_rest_recorded():
    unknown = {"provider": "unknown", "model": "unknown"}
    odd = {"provider": "odd-provider", "model": "odd-model"}
    tracked = {
        "duration": ("eval_job_duration_seconds_count", {**unknown, "status": "succeeded"}),
        "duration_sum": ("eval_job_duration_seconds_sum", {**unknown, "status": "succeeded"}),
        "wait": ("eval_job_queue_wait_seconds_count", {"provider": "unknown"}),
        "in": ("eval_tokens_total", {**unknown, "direction": "input"}),
        "out": ("eval_tokens_total", {**unknown, "direction": "output"}),
        "cost": ("eval_cost_usd_total", unknown),
        "odd_duration": ("eval_job_duration_seconds_count", {**odd, "status": "failed"}),
        "odd_wait": ("eval_job_queue_wait_seconds_count", {"provider": "odd-provider"}),
        "odd_error": ("eval_provider_errors_total", {"provider": "odd-provider", "code": "timeout"}),
        "odd_in": ("eval_tokens_total", {**odd, "direction": "input"}),
        "odd_out": ("eval_tokens_total", {**odd, "direction": "output"}),
        "odd_cost": ("eval_cost_usd_total", odd),
        "poll_304": ("eval_poll_requests_total", {"code": "304"}),
    }
    before = {key: _event(name, **labels) for key, (name, labels) in tracked.items()}
    polls_before = _poll_codes()

    # Labels: None and "" become "unknown", text is trimmed. Numbers: text that
    # is a number counts; negative, not a number, None, an object are skipped.
    metrics.observe_job(None, "", "  succeeded ", "", "2.5", -1, "7", None, object())
    # NaN, infinity, a bool, a negative count and text are no numbers either.
    metrics.observe_job("odd-provider", "odd-model", "failed", "timeout", float("nan"), float("inf"), True, -5, "abc")
    for code in ("abc", None, 99, 600, True, " 304 "):
        metrics.observe_poll(code)

    delta = {key: _event(name, **labels) - before[key] for key, (name, labels) in tracked.items()}
    assert delta == pytest.approx(
        {
            "duration": 1,
            "duration_sum": 2.5,
            "wait": 0,
            "in": 7,
            "out": 0,
            "cost": 0,
            "odd_duration": 0,
            "odd_wait": 0,
            "odd_error": 1,
            "odd_in": 0,
            "odd_out": 0,
            "odd_cost": 0,
            "poll_304": 1,
        }
    )
    assert _poll_codes() - polls_before <= {"304"}  # no series for the odd status codes ("304" may be new)


def _poll_codes():
    return {
        sample.labels["code"]
        for family in events.EVENTS.collect()
        if family.name == "eval_poll_requests"
        for sample in family.samples
    }


def test_odd_value_rules():
    assert [events.amount(v) for v in (0, 3, "1.5", " 2 ", 10**400, -0.1, "x", None, True, float("inf"))] == [
        0.0, 3.0, 1.5, 2.0, None, None, None, None, None, None,
    ]  # fmt: skip
    assert [events.status_code(v) for v in (200, "304", 99, 600, "abc", None, False)] == [
        "200", "304", None, None, None, None, None,
    ]  # fmt: skip
    assert events.label(None) == events.label("  ") == "unknown"
    assert events.label("x" * 500) == "x" * events.LABEL_MAX


BROKEN_DIRECTORY = textwrap.dedent(
    """
    import logging, os, shutil, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
    from eval.metrics import observe_job, observe_poll
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    observe_job("p", "m", "succeeded", None, 1.0, 0.1, 10, 20, 0.01)
    observe_poll(200)
    print("still running")
    """
)


def test_a_broken_multiprocess_directory_is_logged_not_raised(tmp_path):
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_DIRECTORY], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING could not record job metrics" in result.stdout
    assert "WARNING could not record poll metrics" in result.stdout
    assert result.stdout.rstrip().endswith("still running")


# --- several processes --------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from eval.metrics import observe_job, observe_poll
    n = int(sys.argv[1])
    for _ in range(n):
        observe_job("gemini", "gemini-x", "succeeded", None, 1.5, 0.2, 10, 20, 0.001)
    observe_job("gemini", "gemini-x", "failed", "overloaded", 0.7, 0.1, None, None, None)
    for code in (304, 304, 200):
        observe_poll(code)
    """
)


def _write_from_processes(directory, counts):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    for count in counts:
        subprocess.run([sys.executable, "-c", WRITER, str(count)], env=env, cwd=ROOT, check=True, timeout=60)


def test_multiprocess_mode_sums_every_process(tmp_path):
    _write_from_processes(tmp_path, [3, 4])
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file set per process
    found = samples(collector.render(multiproc_dir=str(tmp_path), database=False).decode())
    labels = {"provider": "gemini", "model": "gemini-x"}
    assert value(found, "eval_job_duration_seconds_count", **labels, status="succeeded") == 7
    assert value(found, "eval_job_duration_seconds_count", **labels, status="failed") == 2
    assert value(found, "eval_tokens_total", **labels, direction="output") == 140
    assert value(found, "eval_cost_usd_total", **labels) == pytest.approx(0.007)
    assert value(found, "eval_provider_errors_total", provider="gemini", code="overloaded") == 2
    assert value(found, "eval_poll_requests_total", code="304") == 4
    assert value(found, "eval_poll_requests_total", code="200") == 2
    assert value(found, "eval_job_queue_wait_seconds_count", provider="gemini") == 9


def test_the_exporter_serves_the_directory_without_django(tmp_path):
    directory = tmp_path / "prom"
    directory.mkdir()
    _write_from_processes(directory, [1])
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "eval.metrics", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "serving" in server.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as response:
            found = samples(response.read().decode())
    finally:
        server.terminate()
        server.wait(10)
    assert value(found, "eval_poll_requests_total", code="304") == 2


def _get(url, token=TOKEN):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Host": "localhost"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.read().decode()


@pytest.mark.timeout(120)
def test_gunicorn_with_several_workers_answers_the_same_totals(tmp_path, transactional_db, make_task):
    """Counters written by other processes (think: the job workers) are summed
    by whichever gunicorn worker answers the scrape; the database gauges too."""
    task = make_task()
    LLMJob.objects.create(task=task, provider="echo", model="echo", status="queued", available_at=timezone.now())
    directory = tmp_path / "prom"
    directory.mkdir()
    _write_from_processes(directory, [2, 5])
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_TOKEN": TOKEN,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_THREADS": "1",
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "DJANGO_DEBUG": "1",
        "DJANGO_LOCAL_DIR": str(tmp_path / "local"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        bodies = [_get(f"http://127.0.0.1:{port}/metrics")[1] for _ in range(9)]
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(f"http://127.0.0.1:{port}/metrics", token="wrong")
        assert refused.value.code == 403
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
    labels = {"provider": "gemini", "model": "gemini-x"}
    for body in bodies:
        found = samples(body)
        assert value(found, "eval_job_duration_seconds_count", **labels, status="succeeded") == 7
        assert value(found, "eval_poll_requests_total", code="304") == 4
        assert value(found, "eval_jobs", status="queued") == 1
