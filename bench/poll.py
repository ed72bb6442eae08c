#!/usr/bin/env python
"""Poll endpoint benchmark: what one reviewer tab costs the server.

gunicorn as the product runs it (deploy/gunicorn.conf.py: gthread, one worker per
CPU x 2 threads, each worker on its own SO_REUSEPORT socket, DEBUG off) on
PostgreSQL; a logged-in reviewer (session cookie; a reviewers-group member, so
the permission check is real); a task with 10 jobs of 4 KB output each, then
one with 100; load from loopback with wrk (64 connections) through the real
middleware and auth.

Variants, all behind the same login and permission check:
  304 unchanged  GET /api/tasks/<id>/jobs with If-None-Match (one SQL statement)
  200 changed    the same without If-None-Match (two queries, full answer)
  naive          bench/naive_poll.py: 1 query for the jobs + 1 per job for its
                 task + 1 per job for its creator, the same JSON, no ETag
  ceiling        a constant JSON body after the same login + permission query

Every variant runs --rounds times (default 3), interleaved, so a slow spell of
a shared machine hits them alike; each row is the variant's median run. Prints
req/s, p50/p99 latency, ratios and "tabs" = req/s x 2 (one poll per 2 s per
open tab), then the issue's bars. A measurement, not a test.

    .venv/bin/python bench/poll.py [--duration 8] [--rounds 3] [--connections 64] [--jobs 10,100]
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port, pg_url, reset_postgres  # noqa: E402

PG_BENCH_DB = "evalbench_poll"
OUTPUT_BYTES = 4096


def django_env(extra=None):
    env = {
        **os.environ,
        "DATABASE_URL": pg_url(PG_BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "bench.poll_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra or {})
    return env


# --- seeding (runs in a child with Django set up) ------------------------------------------


def seed(job_counts):
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.utils import timezone

    from eval.models import JobStatus, LLMJob, Task

    user = User.objects.create_user("bench-reviewer", password=secrets.token_urlsafe(12))
    user.groups.add(Group.objects.get(name="reviewers"))
    now = timezone.now()
    line = "The quick brown fox jumps over the lazy dog; a benchmark line of text.\n"
    output = (line * (OUTPUT_BYTES // len(line) + 1))[:OUTPUT_BYTES]
    tasks = {}
    for count in job_counts:
        task = Task.objects.create(source="bench", external_id=f"poll-{count}", title=f"{count} jobs", prompt="bench")
        LLMJob.objects.bulk_create(
            LLMJob(
                task=task,
                created_by=user,
                provider="echo",
                model="echo",
                status=JobStatus.SUCCEEDED,
                progress=100,
                message="Done",
                output=output,
                stop_reason="end_turn",
                attempts=1,
                input_tokens=30,
                output_tokens=800,
                available_at=now,
                started_at=now,
                finished_at=now,
                version=5,
            )
            for _ in range(count)
        )
        tasks[count] = task.id
    client = Client()
    client.force_login(user)
    print(json.dumps({"session": client.cookies["sessionid"].value, "tasks": tasks}))


# --- load ------------------------------------------------------------------------------------


def fetch(url, headers):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def parse_latency(text, label):
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(url, headers, duration, connections, threads=2):
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run(command + [url], capture_output=True, text=True, check=True)
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50": parse_latency(out, "50"),
        "p99": parse_latency(out, "99"),
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def median_run(runs):
    """The run with the median throughput, with every run's p99 for the record."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["p99_all"] = [r["p99"] for r in runs]
    return chosen


def wait_until_idle(base, timeout=60):
    """Let gunicorn drain what a slow variant left queued (the naive poll at 100
    jobs leaves requests behind when wrk stops) before the next one starts."""
    deadline = time.monotonic() + timeout
    quick = 0
    while quick < 3 and time.monotonic() < deadline:
        started = time.monotonic()
        fetch(base + "/healthz", {})
        quick = quick + 1 if time.monotonic() - started < 0.02 else 0
        time.sleep(0.1)


def wait_until_up(base, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of every variant, interleaved; the table shows the median run"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--jobs", default="10,100")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    job_counts = [int(n) for n in args.jobs.split(",")]
    if args.seed:
        seed(job_counts)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    reset_postgres(PG_BENCH_DB)
    env = django_env()
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [python, __file__, "--seed", "--jobs", args.jobs], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    info = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_env = django_env({"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESS_LOG": "/dev/null"})
    web_env["DJANGO_SECRET_KEY"] = env["DJANGO_SECRET_KEY"]
    gunicorn = subprocess.Popen(
        [python, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=ROOT,
        env=web_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(base)
        # Behind the load balancer: TLS ends there and it says so (SECURE_PROXY_SSL_HEADER).
        auth = {"Cookie": f"sessionid={info['session']}", "X-Forwarded-Proto": "https"}
        report = []
        for count in job_counts:
            task_id = info["tasks"][str(count)]
            poll_url = f"{base}/api/tasks/{task_id}/jobs"
            naive_url = f"{base}/bench/naive/{task_id}/jobs"
            status, headers, body = fetch(poll_url, auth)
            assert status == 200, (status, body[:300])
            etag = headers["ETag"]
            n_status, _, naive_body = fetch(naive_url, auth)
            assert n_status == 200 and json.loads(naive_body) == json.loads(body), "naive JSON differs"
            assert fetch(poll_url, {**auth, "If-None-Match": etag})[0] == 304
            variants = [
                ("304 unchanged", poll_url, {**auth, "If-None-Match": etag}),
                ("200 changed", poll_url, auth),
                ("naive N+1", naive_url, auth),
                ("ceiling", f"{base}/bench/constant/{task_id}/jobs", auth),
            ]
            runs = {name: [] for name, _, _ in variants}
            # Rounds of all variants, so a slow spell of this shared machine hits each alike.
            for round_ in range(args.rounds):
                for name, url, headers_ in variants:
                    run_wrk(url, headers_, 2, args.connections)  # warm up
                    result = run_wrk(url, headers_, args.duration, args.connections)
                    runs[name].append(result)
                    wait_until_idle(base)
                    print(
                        f"  {count} jobs, round {round_ + 1}, {name}: {result['rps']:.0f} req/s, "
                        f"p99 {result['p99']:.1f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
            results = {name: median_run(found) for name, found in runs.items()}
            report.append((count, len(body), results))
    finally:
        gunicorn.terminate()
        gunicorn.wait(20)

    cpus = os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nPoll benchmark: gunicorn gthread (deploy/gunicorn.conf.py), PostgreSQL, wrk -c{args.connections} "
        f"-d{args.duration}s, {cpus} CPUs (load average at the end: {load}), reviewer session, "
        f"{OUTPUT_BYTES} B output per job; each row the median of {args.rounds} interleaved runs\n"
    )
    header = f"{'jobs':>4}  {'variant':<14} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
    header += f"{'vs ceiling':>10} {'tabs@2s':>8}  errors"
    print(header)
    print("-" * len(header))
    for count, size, results in report:
        ceiling = results["ceiling"]["rps"]
        for name, r in results.items():
            errors = r["non_2xx_3xx"] if name != "304 unchanged" else 0
            print(
                f"{count:>4}  {name:<14} {r['rps']:>8.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                f"{r['rps'] / ceiling:>9.0%} {r['rps'] * 2:>8.0f}  {errors or ''}{r['socket_errors']}"
            )
        hit, changed, naive = results["304 unchanged"], results["200 changed"], results["naive N+1"]
        bars = [
            ("304 >= 70% of ceiling", hit["rps"] / ceiling, 0.70),
            ("304 >= 5x naive", hit["rps"] / naive["rps"], 5.0),
            ("304 >= 1.5x changed", hit["rps"] / changed["rps"], 1.5),
        ]
        print(f"      answer size {size} B (200); ratios:", end="")
        for label, value, bar in bars:
            print(f"  {label}: {value:.2f} {'ok' if value >= bar else 'MISSED'};", end="")
        # The bars are the unchanged poll's, what an open tab mostly sends.
        p99s = sorted(hit["p99_all"])
        p99 = p99s[len(p99s) // 2]
        runs = " / ".join(f"{value:.0f}" for value in hit["p99_all"])
        print(f"  304 p99 < 100 ms: {p99:.1f} ms (median; runs {runs}) {'ok' if p99 < 100 else 'MISSED'}\n")


if __name__ == "__main__":
    main()
