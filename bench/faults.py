#!/usr/bin/env python
"""Operations under faults: what a Pub/Sub outage costs the web and the daemon.

(a) `POST /api/tasks/<id>/jobs` latency, p50/p99 over --creates sequential
    creates, against a live gunicorn (deploy/gunicorn.conf.py, DEBUG off,
    PostgreSQL, JOB_TRANSPORT=pubsub) with the Pub/Sub emulator up, then with
    it stopped under the running server (the operator's case); then 8
    parallel creates and a /healthz during the outage, and how many of the
    jobs created while it was down are still unpublished (the daemon's).
(b) the daemon's pass time (eval/daemon/passes.py, as the daemon runs it)
    with 200 unpublished jobs and the broker still down, over --passes
    passes: each costs one publish deadline until the breaker opens.
(c) seconds from SIGTERM to the daemon's exit during a slow-drip fetch,
    measured by bench/fault_slow_drip.py.

--crash instead runs bench/fault_crash.py on both transports: a worker killed
with -9 in the middle of 50 jobs, a new one started at once; the time until
every job runs again and until the last one ends, the highest delivery
attempt, attempts per job.

    .venv/bin/python bench/faults.py [--creates 50] [--passes 5]
    .venv/bin/python bench/faults.py --crash [--lease 60]
"""

import argparse
import copy
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import django_on_fresh_postgres, free_port  # noqa: E402

PG_BENCH_DB = "evalbench_faults"
UNPUBLISHED_FOR_DAEMON = 200


def pubsub_env(host):
    """The transport's settings, for this process (before Django starts) and gunicorn's."""
    name = uuid.uuid4().hex[:8]
    return {
        "JOB_TRANSPORT": "pubsub",
        "PUBSUB_EMULATOR_HOST": host,
        "PUBSUB_PROJECT_ID": "bench-faults",
        "PUBSUB_TOPIC": f"jobs-{name}",
        "PUBSUB_SUBSCRIPTION": f"worker-{name}",
        "PUBSUB_DEAD_LETTER_TOPIC": f"dead-{name}",
        # Creating 50 jobs a phase is the point here, not the per-user limits.
        "JOB_CREATE_RATE": "100000/m",
        "MAX_QUEUED_JOBS_PER_USER": "100000",
        "LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def seed():
    """A reviewer with an API token, and a task; (task id, token)."""
    from django.contrib.auth.models import Group, User

    from eval.models import ApiToken, Task

    user = User.objects.create_user("bench-faults", password=secrets.token_urlsafe(12))
    user.groups.add(Group.objects.get(name="reviewers"))
    task = Task.objects.create(source="bench", external_id="faults", title="Faults", prompt="one two three")
    _, raw = ApiToken.issue(user, "bench")
    return task.pk, raw


# --- (a) the web ---------------------------------------------------------------------------


class Web:
    """gunicorn as the product runs it, on a free port."""

    def __init__(self, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        web_env = {**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_ACCESS_LOG": "/dev/null"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
            cwd=ROOT,
            env=web_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_until_up(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not come up")

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


def timed(url, headers, body=None):
    """(seconds, status) of one request."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return time.perf_counter() - started, status


def create_jobs(web, task_id, token, n):
    """Latencies (s) of ``n`` sequential creates; every one must answer 201."""
    url = f"{web.base}/api/tasks/{task_id}/jobs"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-Forwarded-Proto": "https",  # behind the load balancer: TLS ends there
    }
    body = json.dumps({"provider": "echo", "model": "echo"}).encode()
    latencies = []
    for _ in range(n):
        seconds, status = timed(url, headers, body)
        assert status == 201, status
        latencies.append(seconds)
    return latencies


def parallel_creates_and_health(web, task_id, token, n=8):
    """The operator's burst: ``n`` parallel creates and one /healthz beside them; (slowest create, healthz) s."""
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(max(create_jobs(web, task_id, token, 1)))) for _ in range(n)
    ]
    for thread in threads:
        thread.start()
    health, status = timed(web.base + "/healthz", {"X-Forwarded-Proto": "https"})
    for thread in threads:
        thread.join()
    assert status == 200, status
    return max(results), health


def percentiles(latencies):
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def unpublished(since):
    from eval.models import LLMJob

    return LLMJob.objects.filter(created_at__gte=since, published_at__isnull=True).count()


# --- (b) the daemon ------------------------------------------------------------------------


def daemon_passes(passes_wanted):
    """Pass seconds and jobs republished, with UNPUBLISHED_FOR_DAEMON jobs waiting and the broker down."""
    from django.utils import timezone

    from eval import broker as queue
    from eval.daemon import passes
    from eval.models import LLMJob

    LLMJob.objects.update(published_at=timezone.now())  # only the ones below wait
    # Copies of a job whose process gave up on them a while ago (past its
    # publisher's in-flight window); made here without publishing.
    template = LLMJob.objects.first()
    copies = []
    for _ in range(UNPUBLISHED_FOR_DAEMON):
        template.pk, template.published_at = uuid.uuid4(), None
        template._state.adding = True
        copies.append(copy.copy(template))
    LLMJob.objects.bulk_create(copies)
    LLMJob.objects.filter(published_at__isnull=True).update(updated_at=timezone.now() - timedelta(minutes=5))
    queue.reset_breaker()  # the daemon starts with a closed breaker
    results = []
    for _ in range(passes_wanted):
        done = passes.run_pass(source="")
        results.append((done.seconds, done.republished))
    return results


# --- (c) another engineer's measurement -----------------------------------------------------


def slow_drip_shutdown():
    """Seconds from SIGTERM to the daemon's exit during a slow-drip fetch (bench/fault_slow_drip.py, on PostgreSQL)."""
    from bench import fault_slow_drip

    return fault_slow_drip.measure(database="postgres")


# --- the run -------------------------------------------------------------------------------


def load():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=50)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--crash", action="store_true", help="the worker-crash scenario (bench/fault_crash.py)")
    parser.add_argument("--lease", type=float, default=60, help="--crash: JOB_LEASE_SECONDS")
    args = parser.parse_args()
    if args.crash:
        from bench import fault_crash

        return fault_crash.main(["--transport", "both", "--lease", str(args.lease)])

    from tests.fakes.pubsub_emulator import PubSubEmulator, find_emulator

    if find_emulator() is None:
        raise SystemExit("the Pub/Sub emulator is not installed (Debian package google-cloud-cli-pubsub-emulator)")
    load_before = load()
    emulator = PubSubEmulator()
    emulator.start()
    env = pubsub_env(emulator.host)
    os.environ.update(env)
    django_on_fresh_postgres(PG_BENCH_DB)  # this process: seeding, counting, and (b)
    from django.conf import settings
    from django.core.management import call_command

    call_command("pubsub_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115 (closed at exit)
    task_id, token = seed()
    web = Web({**env, "DATABASE_URL": os.environ["DATABASE_URL"], "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)})
    try:
        web.wait_until_up()
        create_jobs(web, task_id, token, 5)  # warm up both workers and their publishers
        from django.utils import timezone

        up_since = timezone.now()
        up = create_jobs(web, task_id, token, args.creates)
        time.sleep(1)  # the publishers' last sends
        up_left = unpublished(up_since)
        emulator.stop()
        down_since = timezone.now()
        down = create_jobs(web, task_id, token, args.creates)
        burst, health = parallel_creates_and_health(web, task_id, token)
        time.sleep(2 * settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS)  # let the publishers finish trying
        left = unpublished(down_since)
    finally:
        web.stop()
        emulator.stop()
    pass_results = daemon_passes(args.passes)
    drip = slow_drip_shutdown()

    print(
        f"\nFaults benchmark: gunicorn (deploy/gunicorn.conf.py), PostgreSQL, JOB_TRANSPORT=pubsub, "
        f"PUBSUB_PUBLISH_TIMEOUT_SECONDS={settings.PUBSUB_PUBLISH_TIMEOUT_SECONDS:g}, "
        f"PUBSUB_BREAKER_COOLDOWN_SECONDS={settings.PUBSUB_BREAKER_COOLDOWN_SECONDS:g}; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"    uptime before: {load_before}\n    uptime after:  {load()}")
    print(f"(a) POST /api/tasks/<id>/jobs, {args.creates} sequential creates:")
    for name, latencies in (("emulator up", up), ("emulator down", down)):
        p50, p99 = percentiles(latencies)
        print(f"    {name:14} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {max(latencies) * 1000:7.1f} ms")
    print(f"    jobs created while up left unpublished: {up_left} of {args.creates}")
    print(f"    down, 8 parallel creates: slowest {burst * 1000:.1f} ms; /healthz beside them {health * 1000:.1f} ms")
    print(f"    jobs created while down still unpublished (left to the daemon): {left} of {args.creates + 8}")
    print(f"(b) daemon passes with {UNPUBLISHED_FOR_DAEMON} unpublished jobs, broker down:")
    for n, (seconds, republished) in enumerate(pass_results, 1):
        print(f"    pass {n}: {seconds:6.2f} s, republished {republished}")
    print(f"(c) SIGTERM to daemon exit during a slow-drip fetch: {drip:.2f} s (bench/fault_slow_drip.py)")


if __name__ == "__main__":
    main()
