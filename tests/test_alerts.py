"""Alerts (DESIGN "Alerts"): each rule fires once, repeats after
ALERT_REPEAT_SECONDS, resolves and says so; two daemons acting on the same
reading fire once; email through Django's locmem backend, the webhook against
a local receiver (its JSON body, a 500 or a hang retried on the next pass,
never blocking past its timeout, its URL never logged); /api/status, the
dashboard, the daemon pass, the settings checks and the Prometheus rules
shipped in deploy/."""

import json
import logging
import re
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from django.core import mail
from django.utils import timezone

from eval.alerts import rules, snapshot, state
from eval.alerts.step import run_step
from eval.daemon.passes import run_pass
from eval.jobs import errors as job_errors
from eval.metrics import collector, events
from eval.models import Alert, AlertNotice, LLMJob, Run, WorkerHeartbeat
from eval.system_checks import environment_check
from tests.helpers import free_port, login

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600
OPS = "ops@example.com"


@pytest.fixture(autouse=True)
def _alert_settings(settings, plain_http):
    settings.ALERT_NO_WORKER_SECONDS = 120
    settings.ALERT_QUEUE_AGE_SECONDS = 600
    settings.ALERT_WINDOW_SECONDS = 600
    settings.ALERT_FAILURE_RATE = 0.2
    settings.ALERT_MIN_FAILURES = 5
    settings.ALERT_REPEAT_SECONDS = HOUR
    settings.ALERT_EMAILS = [OPS]
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_SEND_TIMEOUT_SECONDS = 2
    settings.DEFAULT_FROM_EMAIL = "eval@example.com"
    return settings


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0)


def make_job(task, status, at, *, provider="echo", error_code=""):
    """A job in ``status``: created at ``at``; a final one also finished then."""
    job = LLMJob.objects.create(
        task=task, provider=provider, model="echo", status=status, error_code=error_code, available_at=at
    )
    finished = at if status in ("succeeded", "failed", "cancelled") else None
    LLMJob.objects.filter(pk=job.pk).update(created_at=at, finished_at=finished)
    return job


def worker_online(at):
    WorkerHeartbeat.objects.update_or_create(
        worker_id="w1", defaults={"hostname": "h", "pid": 1, "started_at": at, "last_seen": at}
    )


def sent_mail(key, word):
    return [m for m in mail.outbox if m.subject.startswith(f"[eval alert] {word} {key}")]


# --- each rule: fire once, repeat, resolve ------------------------------------------------------


def _no_worker(task, t0, settings):
    settings.ALERT_QUEUE_AGE_SECONDS = 10 * HOUR  # this job alone, for the length of the test
    make_job(task, "queued", t0 - timedelta(seconds=121))
    return lambda: LLMJob.objects.update(status="cancelled", finished_at=t0)


def _queue_age(task, t0, settings):
    worker_online(t0 + timedelta(days=1))  # online all along: only the wait counts
    make_job(task, "queued", t0 - timedelta(seconds=601))
    return lambda: LLMJob.objects.update(status="cancelled", finished_at=t0)


def _failure_rate(task, t0, settings):
    settings.ALERT_WINDOW_SECONDS = 2 * HOUR  # else the window slides past them before the repeat is due
    for _ in range(5):
        make_job(task, "failed", t0 - timedelta(seconds=60), error_code="server_error")
        make_job(task, "succeeded", t0 - timedelta(seconds=60))
    # Later, many successes inside the window bring the share under 20%.
    return lambda: [make_job(task, "succeeded", t0 + timedelta(seconds=HOUR)) for _ in range(30)]


def _provider_auth(task, t0, settings):
    make_job(task, "succeeded", t0 - timedelta(seconds=30), provider="gemini")
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="gemini", error_code="auth")
    return lambda: make_job(task, "succeeded", t0 + timedelta(seconds=HOUR), provider="gemini")


def _schedule_refused(task, t0, settings):
    run = Run.objects.create(
        name="nightly",
        provider="echo",
        model="echo",
        schedule="0 3 * * *",
        refused_reason="over max_cost_usd",
        refused_at=t0 - timedelta(seconds=5),
    )
    # What schedules.py does when the next firing launches.
    return lambda: Run.objects.filter(pk=run.pk).update(refused_reason="", refused_at=None)


RULES = {
    "no_worker": _no_worker,
    "queue_age": _queue_age,
    "failure_rate": _failure_rate,
    "provider_auth:gemini": _provider_auth,
    "schedule_refused:": _schedule_refused,
}


@pytest.mark.parametrize("key", list(RULES))
def test_it_fires_once_repeats_after_the_repeat_time_and_resolves(key, task, t0, settings):
    clear = RULES[key](task, t0, settings)
    if key == "schedule_refused:":
        key += str(Run.objects.get().pk)

    run_step(t0)
    assert [a.key for a in Alert.objects.filter(active=True)] == [key]
    assert len(sent_mail(key, "FIRING")) == 1

    for later in (60, HOUR - 1):  # holds, but the repeat is not due
        report = run_step(t0 + timedelta(seconds=later))
        assert (report.changes.fired, report.changes.repeated) == ([], [])
    assert len(mail.outbox) == 1

    report = run_step(t0 + timedelta(seconds=HOUR))
    assert report.changes.repeated == [key]
    assert len(sent_mail(key, "STILL FIRING")) == 1
    run_step(t0 + timedelta(seconds=HOUR + 60))
    assert len(mail.outbox) == 2

    clear()
    report = run_step(t0 + timedelta(seconds=HOUR + 120))
    assert report.changes.resolved == [key]
    [resolved] = sent_mail(key, "RESOLVED")
    assert resolved.to == [OPS] and resolved.from_email == "eval@example.com"
    assert not Alert.objects.filter(active=True).exists()
    run_step(t0 + timedelta(seconds=HOUR + 180))
    assert len(mail.outbox) == 3


def test_below_the_thresholds_nothing_fires(task, t0):
    make_job(task, "queued", t0 - timedelta(seconds=100))  # no worker, but for under 120 s
    for _ in range(3):  # with the auth error below, 4 failures of 5 ended: under ALERT_MIN_FAILURES
        make_job(task, "failed", t0 - timedelta(seconds=60), error_code="server_error")
    make_job(task, "failed", t0 - timedelta(seconds=601), error_code="server_error")  # before the window
    make_job(task, "failed", t0 - timedelta(seconds=60), provider="gemini", error_code="auth")
    make_job(task, "succeeded", t0 - timedelta(seconds=30), provider="gemini")  # the auth error is resolved
    assert run_step(t0).active == 0
    assert not Alert.objects.exists() and not mail.outbox


def test_no_worker_counts_from_the_last_heartbeat(task, t0):
    make_job(task, "queued", t0 - timedelta(hours=2))
    stopped = {"hostname": "h", "pid": 1, "started_at": t0 - timedelta(hours=3), "stopped_at": t0}
    WorkerHeartbeat.objects.create(worker_id="gone", last_seen=t0 - timedelta(seconds=60), **stopped)
    assert rules.no_worker(_snapshot(t0), t0, rules.Limits.from_settings()) is None
    later = t0 + timedelta(seconds=61)
    assert (
        "no worker online for 2 min" in rules.no_worker(_snapshot(later), later, rules.Limits.from_settings()).message
    )


def _snapshot(now):

    return snapshot.read(now, 600)


def test_failure_rate_at_exactly_the_limit_does_not_fire():
    limits = rules.Limits(no_worker_s=120, queue_age_s=600, window_s=600, failure_rate=0.2, min_failures=5)
    now = timezone.now()
    assert rules.failure_rate(rules.Snapshot(ended=25, failed=5), now, limits) is None
    assert rules.failure_rate(rules.Snapshot(ended=24, failed=5), now, limits).rule == "failure_rate"
    assert rules.failure_rate(rules.Snapshot(ended=4, failed=4), now, limits) is None


def test_the_auth_rule_reads_the_engines_auth_code():
    assert "auth" in job_errors.DESCRIPTIONS


# --- two daemons ---------------------------------------------------------------------------------


def test_two_evaluators_on_the_same_reading_fire_repeat_and_resolve_once(task, t0, settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    make_job(task, "queued", t0 - timedelta(seconds=700))
    limits = rules.Limits.from_settings()
    channels = ["email", "webhook"]

    def both(now):
        """Two daemons read the table, then both act on what they read (a failover overlap)."""
        conditions = rules.evaluate(_snapshot(now), now, limits)
        keys = [c.key for c in conditions]
        readings = [state.read_current(keys), state.read_current(keys)]
        return [state.apply(conditions, now, repeat_s=HOUR, channels=channels, current=r) for r in readings]

    first, second = both(t0)
    assert sorted(first.fired) == ["no_worker", "queue_age"] and second.fired == []
    assert AlertNotice.objects.filter(kind="firing").count() == 4  # two alerts, two channels, once

    first, second = both(t0 + timedelta(seconds=HOUR))
    assert len(first.repeated) == 2 and second.repeated == []
    assert AlertNotice.objects.filter(kind="repeat").count() == 4

    LLMJob.objects.update(status="cancelled", finished_at=t0)
    first, second = both(t0 + timedelta(seconds=HOUR + 60))
    assert len(first.resolved) == 2 and second.resolved == []
    assert AlertNotice.objects.filter(kind="resolved").count() == 4

    # A stand-by daemon taking over later sees the table and sends nothing more.
    run_step(t0 + timedelta(seconds=HOUR + 120))
    assert AlertNotice.objects.count() == 12


def test_a_second_daemon_does_not_send_a_notice_another_holds(task, t0):
    make_job(task, "queued", t0 - timedelta(seconds=700))
    state.apply(rules.evaluate(_snapshot(t0), t0, rules.Limits.from_settings()), t0, repeat_s=HOUR, channels=["email"])
    notices = state.due(t0)
    assert len(notices) == 2
    assert state.claim(notices[0], t0, hold_s=10)
    assert not state.claim(notices[0], t0, hold_s=10)  # the other daemon's claim fails
    assert [n.pk for n in state.due(t0)] == [notices[1].pk]
    assert state.claim(notices[0], t0 + timedelta(seconds=11), hold_s=10)  # a dead sender's claim runs out


# --- the webhook ---------------------------------------------------------------------------------


class Receiver:
    """A local webhook: records each JSON body; answers ``mode``: ok, 500, hang, drip."""

    def __init__(self):
        self.bodies = []
        self.mode = "ok"
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append((self.path, self.headers["Content-Type"], json.loads(body)))
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                    return
                if receiver.mode == "drip":  # a byte at a time: no socket timeout ever trips
                    for byte in b"HTTP/1.1 200 OK\r\n":
                        if receiver.release.wait(0.05):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                self.send_response(500 if receiver.mode == "500" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0001/B0002/s3cr3tPathToken"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    hook = Receiver()
    settings.ALERT_WEBHOOK_URL = hook.url
    settings.ALERT_EMAILS = []
    yield hook
    hook.close()


def test_webhook_posts_slack_compatible_json(receiver, task, t0):
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="anthropic", error_code="auth")
    report = run_step(t0)
    assert report.sent == 1
    [(path, content_type, body)] = receiver.bodies
    assert path == "/services/T0001/B0002/s3cr3tPathToken" and content_type == "application/json"
    assert list(body) == ["text"]
    assert body["text"].startswith("FIRING provider_auth:anthropic: anthropic rejected the API key")
    assert AlertNotice.objects.get().outcome == "sent"


def test_a_webhook_that_answers_500_is_retried_next_pass(receiver, task, t0, caplog):
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="anthropic", error_code="auth")
    receiver.mode = "500"
    with caplog.at_level(logging.DEBUG):
        report = run_step(t0)
    assert (report.sent, report.failed) == (0, 1)
    notice = AlertNotice.objects.get()
    assert (notice.outcome, notice.attempts, notice.last_error) == ("pending", 1, "HTTP 500")
    assert "webhook (127.0.0.1) failed (HTTP 500); trying again next pass" in caplog.text

    receiver.mode = "ok"
    with caplog.at_level(logging.DEBUG):
        report = run_step(t0 + timedelta(seconds=60))
    assert report.sent == 1 and report.changes.fired == []  # the same notice, not a second firing
    notice.refresh_from_db()
    assert (notice.outcome, notice.attempts) == ("sent", 2)
    assert [body["text"] for _, _, body in receiver.bodies] == [notice.text, notice.text]
    assert "s3cr3tPathToken" not in caplog.text and "/services/" not in caplog.text


@pytest.mark.parametrize("mode", ["hang", "drip"])
def test_a_webhook_that_does_not_answer_never_holds_the_pass_past_its_timeout(
    receiver, task, t0, settings, mode, caplog
):
    settings.ALERT_SEND_TIMEOUT_SECONDS = 0.3
    for provider in ("anthropic", "gemini", "echo"):  # three alerts: three notices owed
        make_job(task, "failed", t0 - timedelta(seconds=5), provider=provider, error_code="auth")
    receiver.mode = mode
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        report = run_step(t0)
    elapsed = time.monotonic() - started
    # One try, bounded by the thread's join (the drip never trips a socket timeout);
    # the channel is then down for this pass, so the other two wait for the next.
    assert (report.sent, report.failed, report.waiting) == (0, 1, 2)
    failed = AlertNotice.objects.get(attempts=1)
    assert failed.last_error in ("no answer within 0.3 s", "timed out")
    if mode == "drip":
        assert failed.last_error == "no answer within 0.3 s"
    assert elapsed < 10  # 0.3 s and some queries; generous for a loaded machine
    assert "s3cr3tPathToken" not in caplog.text

    receiver.release.set()
    receiver.mode = "ok"
    report = run_step(t0 + timedelta(seconds=60))
    assert report.sent == 3
    assert set(AlertNotice.objects.values_list("outcome", flat=True)) == {"sent"}


def test_a_stop_gives_up_a_send_in_flight_and_starts_no_other(receiver, task, t0, settings):
    """SIGTERM while a webhook hangs: the daemon must stop within about a second, not wait
    out ALERT_SEND_TIMEOUT_SECONDS; the notice is sent on a later pass."""
    settings.ALERT_SEND_TIMEOUT_SECONDS = 60
    for provider in ("anthropic", "gemini"):
        make_job(task, "failed", t0 - timedelta(seconds=5), provider=provider, error_code="auth")
    receiver.mode = "hang"
    asked = []

    def stop_after_the_first_send_began():
        asked.append(1)
        return len(asked) > 2  # the first checks let one send begin; then SIGTERM arrives

    started = time.monotonic()
    report = run_step(t0, should_stop=stop_after_the_first_send_began)
    assert time.monotonic() - started < 10  # a 0.2 s check, far from the 60 s timeout
    assert (report.sent, report.failed, report.waiting) == (0, 1, 1)
    assert AlertNotice.objects.get(attempts=1).last_error == "given up: the daemon is stopping"

    receiver.release.set()
    receiver.mode = "ok"
    assert run_step(t0 + timedelta(seconds=60)).sent == 2


def test_budget_spent_leaves_the_rest_for_the_next_pass(receiver, task, t0):
    for provider in ("anthropic", "gemini", "echo"):
        make_job(task, "failed", t0 - timedelta(seconds=5), provider=provider, error_code="auth")
    report = run_step(t0, budget_s=0)
    assert (report.sent, report.waiting) == (0, 3)
    assert run_step(t0 + timedelta(seconds=60)).sent == 3


def test_the_webhook_url_is_never_logged_or_stored(settings, task, t0, caplog):
    port = free_port()  # nothing listens: connection refused
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks/s3cr3tPathToken"
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="anthropic", error_code="auth")
    with caplog.at_level(logging.DEBUG):
        run_step(t0)
        run_step(t0 + timedelta(seconds=60))
    webhook = AlertNotice.objects.get(channel="webhook")
    assert webhook.outcome == "pending" and webhook.attempts == 2
    assert "Connection" in webhook.last_error
    assert "webhook (127.0.0.1) failed" in caplog.text
    assert "s3cr3tPathToken" not in caplog.text and "s3cr3tPathToken" not in webhook.last_error
    assert AlertNotice.objects.get(channel="email").outcome == "sent"  # email went; only the webhook waits


def test_a_notice_failing_for_a_day_is_dropped(task, t0, settings, caplog):
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/hook"
    settings.ALERT_EMAILS = []
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="anthropic", error_code="auth")
    run_step(t0)
    with caplog.at_level(logging.ERROR):
        run_step(t0 + timedelta(days=1, seconds=1), budget_s=0)
    assert AlertNotice.objects.get(kind="firing").outcome == "dropped"
    assert "dropped 1 notice(s)" in caplog.text


def test_notices_for_a_channel_no_longer_configured_are_dropped(task, t0, settings):
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/hook"
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="anthropic", error_code="auth")
    run_step(t0)
    settings.ALERT_WEBHOOK_URL = ""
    run_step(t0 + timedelta(seconds=60))
    outcomes = dict(AlertNotice.objects.values_list("channel", "outcome"))
    assert outcomes == {"email": "sent", "webhook": "dropped"}


# --- where alerts show ----------------------------------------------------------------------------


def test_status_api_lists_active_alerts(staff, task, t0):
    make_job(task, "failed", t0 - timedelta(seconds=5), provider="gemini", error_code="auth")
    assert login(staff).get("/api/status").json()["alerts"] == []
    run_step(t0)
    [alert] = login(staff).get("/api/status").json()["alerts"]
    assert alert["rule"] == "provider_auth"
    assert alert["message"].startswith("gemini rejected the API key")
    assert alert["since"] == (t0 - timedelta(seconds=5)).isoformat()


def test_dashboard_shows_an_active_alert(staff, task, t0):
    make_job(task, "queued", t0 - timedelta(seconds=700))
    html = login(staff).get("/dashboard/").content.decode()
    assert "No active alerts." in html
    run_step(t0)
    html = login(staff).get("/dashboard/").content.decode()
    assert 'data-rule="queue_age"' in html and "the oldest queued job has waited 12 min" in html
    assert "No active alerts." not in html


def test_the_daemon_pass_evaluates_the_alerts(task, t0):
    make_job(task, "queued", timezone.now() - timedelta(seconds=700))
    done = run_pass(source="")
    assert done.ok, done.errors
    assert set(Alert.objects.filter(active=True).values_list("key", flat=True)) == {"no_worker", "queue_age"}
    assert len(mail.outbox) == 2


# --- settings -------------------------------------------------------------------------------------


def test_bad_alert_settings_are_reported_without_the_url(settings):
    settings.ALERT_FAILURE_RATE = 1.5
    settings.ALERT_WEBHOOK_URL = "hooks.example.com/s3cr3tPathToken"
    settings.ALERT_EMAILS = ["ops@example.com", "not-an-address"]
    found = {message.id: message.msg for message in environment_check()}
    assert {"eval.E020", "eval.E021", "eval.E022"} <= set(found)
    assert "s3cr3tPathToken" not in found["eval.E021"]
    assert "'not-an-address'" in found["eval.E022"]


# --- Prometheus / Alertmanager --------------------------------------------------------------------

SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exposed_metric_names():
    """Every sample name /metrics can print: the event families and the database gauges."""
    families = list(events.EVENTS.collect()) + list(collector.ScrapeHealth(collector.DatabaseCollector()).collect())
    return {family.name + suffix for family in families for suffix in SAMPLE_SUFFIXES[family.type]}


def test_prometheus_rules_parse_and_name_only_exposed_metrics():
    document = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    rules_ = [rule for group in document["groups"] for rule in group["rules"]]
    assert {rule["labels"]["rule"] for rule in rules_} == set(Alert.Rule.values)
    exposed = exposed_metric_names()
    assert "eval_scheduled_runs_refused" in exposed and "eval_provider_errors_total" in exposed
    for rule in rules_:
        assert rule["alert"] and rule["annotations"]["summary"]
        named = set(re.findall(r"\beval_[a-z_]+", rule["expr"]))
        assert named and named <= exposed, (rule["alert"], named - exposed)


def test_alertmanager_example_parses():
    document = yaml.safe_load((ROOT / "deploy" / "alertmanager.example.yml").read_text())
    assert document["route"]["receiver"] in {receiver["name"] for receiver in document["receivers"]}


def test_refused_schedules_gauge(t0):
    Run.objects.create(name="n", provider="echo", model="echo", schedule="0 3 * * *", refused_reason="over budget")
    Run.objects.create(name="m", provider="echo", model="echo", schedule="0 3 * * *")
    families = {f.name: f for f in collector.DatabaseCollector().collect()}
    assert families["eval_scheduled_runs_refused"].samples[0].value == 1
