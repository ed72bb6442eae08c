#!/usr/bin/env python
"""Worker benchmark: throughput, efficiency, memory and latency of process_llm_jobs.

Three workloads, each a 1-s job of 20 chunks x 50 ms:
  overhead   the offline `echo` model (ECHO_CHUNK_DELAY_MS=50, a 20-word prompt)
  realistic  the Anthropic fake (tests/fakes/llm_server.py) in its own process,
             called through the real anthropic SDK
  openai     the OpenAI chat completions fake (tests/fakes/openai_wire.py) in its
             own process, called through the real openai SDK (streamed, with usage)

Rows: transport db on PostgreSQL and on SQLite, pubsub on the official
emulator (PostgreSQL behind it) x concurrency 1, 16, 64, 200, ONE worker
process each. For every row the real `manage.py process_llm_jobs` runs as a
subprocess over a pre-filled queue; figures come from the database's own
timestamps (first claim to last finish), the child's rusage (peak RSS) and
PostgreSQL's statistics (connections held, rows updated).

Light load (one job per 100 ms into an idle worker): enqueue-to-claim
p50/p99 and cancel-to-cancelled p99.

    .venv/bin/python bench/worker.py [--quick] [--only overhead|realistic|openai]
        [--configs db-postgres,db-sqlite,pubsub] [--concurrency 1,16,64,200]

It prints a table; it is a measurement, not a pass/fail test.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import child_usage, free_port, pg_url, print_throughput, reset_postgres  # noqa: E402

PG_BENCH_DB = os.environ.get("BENCH_WORKER_DB", "evalbench_worker")  # another name for a bench run beside others
WORKER_APP_NAME = "bench-worker"
PROMPT = " ".join(f"word{i}" for i in range(20))  # echo: 20 chunks


# --- orchestration (the parent process; no Django here) -----------------------------------


def child_env(database_url, extra):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-not-secret-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
        "ECHO_CHUNK_DELAY_MS": "50",
        "JOB_LEASE_SECONDS": "60",
        **extra,
    }
    return env


def run_phase(args, env):
    """Run this script in --phase mode under ``env``; return its JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(f"phase {args} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def migrate(env):
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True, timeout=300)


class Services:
    """The Pub/Sub emulator and the Anthropic and OpenAI fakes, started when needed."""

    def __init__(self):
        self.emulator = None
        self.fake = None
        self.fake_url = None
        self.openai_fake = None
        self.openai_url = None

    def start_emulator(self):
        if self.emulator is None:
            from tests.fakes.pubsub_emulator import PubSubEmulator, find_emulator

            if find_emulator() is None:
                return None
            self.emulator = PubSubEmulator()
            self.emulator.start()
        return self.emulator.host

    def start_fake(self):
        if self.fake is None:
            self.fake, self.fake_url = start_fake_process("tests.fakes.llm_server")
        return self.fake_url

    def start_openai_fake(self):
        if self.openai_fake is None:
            self.openai_fake, self.openai_url = start_fake_process("tests.fakes.openai_wire")
        return self.openai_url + "/v1"

    def stop(self):
        if self.emulator:
            self.emulator.stop()
        for fake in (self.fake, self.openai_fake):
            if fake:
                os.killpg(fake.pid, signal.SIGTERM)
                fake.wait(10)


def start_fake_process(module):
    """A fake model server (20 chunks x 50 ms per answer) in its own process: (process, URL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--chunks", "20", "--delay", "0.05"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,  # it says where it listens; we know
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


def provider_env(workload, services):
    if workload == "realistic":
        return {
            "ANTHROPIC_API_KEY": "bench-key",
            "ANTHROPIC_BASE_URL": services.start_fake(),
            "ANTHROPIC_MODELS": "claude-bench:4096",
            "ANTHROPIC_MAX_CONCURRENCY": "1000",
            "PROVIDER_REQUEST_TIMEOUT_SECONDS": "30",
        }
    if workload == "openai":
        return {
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": services.start_openai_fake(),
            "OPENAI_MODELS": "gpt-bench:4096",
            "OPENAI_MAX_CONCURRENCY": "1000",
            "PROVIDER_REQUEST_TIMEOUT_SECONDS": "30",
        }
    return {}


WORKLOAD_MODELS = {
    "overhead": ("echo", "echo"),
    "realistic": ("anthropic", "claude-bench"),
    "openai": ("openai", "gpt-bench"),
}


def config_env(config, services, sqlite_path):
    if config == "db-sqlite":
        return f"sqlite:///{sqlite_path}", {"JOB_TRANSPORT": "db"}
    if config == "db-postgres":
        return pg_url(PG_BENCH_DB), {"JOB_TRANSPORT": "db", "DATABASE_APPLICATION_NAME": WORKER_APP_NAME}
    host = services.start_emulator()
    if host is None:
        return None, None
    return pg_url(PG_BENCH_DB), {
        "JOB_TRANSPORT": "pubsub",
        "PUBSUB_EMULATOR_HOST": host,
        "PUBSUB_PROJECT_ID": "bench",
        "PUBSUB_TOPIC": f"bench-{int(time.time() * 1000)}",
        "PUBSUB_SUBSCRIPTION": f"bench-sub-{int(time.time() * 1000)}",
        "PUBSUB_DEAD_LETTER_TOPIC": f"bench-dead-{int(time.time() * 1000)}",
        "DATABASE_APPLICATION_NAME": WORKER_APP_NAME,
    }


def jobs_for(concurrency, quick):
    rounds = 2 if quick else 4
    return max(concurrency * rounds, 8 if quick else 10)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer jobs per row")
    parser.add_argument("--only", choices=sorted(WORKLOAD_MODELS))
    parser.add_argument("--configs", default="db-postgres,db-sqlite,pubsub")
    parser.add_argument("--concurrency", default="1,16,64,200")
    parser.add_argument("--provider", default="echo", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="echo", help=argparse.SUPPRESS)
    parser.add_argument("--worker-concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        return phase(args)

    workloads = [args.only] if args.only else list(WORKLOAD_MODELS)
    configs = args.configs.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    services = Services()
    rows, latency = [], []
    tmp = tempfile.mkdtemp(prefix="bench-worker-")
    try:
        for workload in workloads:
            provider, model = WORKLOAD_MODELS[workload]
            for config in configs:
                sqlite_path = Path(tmp) / f"{workload}-{config}.sqlite3"
                url, extra = config_env(config, services, sqlite_path)
                if url is None:
                    print(f"skipping {config}: the Pub/Sub emulator is not installed", file=sys.stderr)
                    continue
                env = child_env(url, {**extra, **provider_env(workload, services)})
                if config != "db-sqlite":
                    reset_postgres(PG_BENCH_DB)
                migrate(env)
                for level in levels:
                    if config == "pubsub":
                        fresh_subscription(env)
                    result = run_phase(
                        [
                            "--phase",
                            "throughput",
                            "--jobs",
                            str(jobs_for(level, args.quick)),
                            "--worker-concurrency",
                            str(level),
                            "--provider",
                            provider,
                            "--model",
                            model,
                        ],
                        env,
                    )
                    result.update(workload=workload, config=config, concurrency=level)
                    rows.append(result)
                    print(
                        f"  {workload:9} {config:11} c={level:<3} {result['jobs_per_s']:7.1f} jobs/s "
                        f"eff {result['efficiency']:.3f} rss {result['peak_rss_mb']:.0f} MB "
                        f"cpu {result['cpu_s']:.2f} s "
                        f"(mean job {result['mean_job_s']:.3f} s, {result['seconds']:.2f} s in all)",
                        file=sys.stderr,
                    )
                if config == "pubsub":
                    fresh_subscription(env)
                result = run_phase(["--phase", "latency", "--provider", provider, "--model", model], env)
                result.update(workload=workload, config=config)
                latency.append(result)
                print(
                    f"  {workload:9} {config:11} light load: claim p50 {result['claim_p50_ms']:.1f} ms", file=sys.stderr
                )
    finally:
        services.stop()
    print_tables(rows, latency)


def fresh_subscription(env):
    """A new topic and subscription for each measured run: the emulator keeps
    sending to a consumer stream that has gone away (the real service notices),
    so a second worker on the same subscription would wait for redelivery."""
    stamp = f"{time.time_ns():x}"
    env.update(PUBSUB_TOPIC=f"bench-{stamp}", PUBSUB_SUBSCRIPTION=f"bench-sub-{stamp}")
    subprocess.run(
        [sys.executable, "manage.py", "pubsub_setup"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=60
    )


def print_tables(rows, latency):
    print()
    print_throughput("Throughput (one worker process; 1-s jobs of 20 chunks x 50 ms)", rows)
    print()
    print("Light load (one job per 100 ms, idle worker)")
    header = f"{'workload':10} {'transport/db':14} {'claim p50':>10} {'claim p99':>10} {'cancel p99':>11}"
    print(header)
    print("-" * len(header))
    for r in latency:
        print(
            f"{r['workload']:10} {r['config']:14} {r['claim_p50_ms']:>7.1f} ms {r['claim_p99_ms']:>7.1f} ms "
            f"{r['cancel_p99_ms']:>8.0f} ms"
        )
    print()
    print(
        "efficiency = jobs/s / (concurrency / 1 s); CPU µs/tok = the worker's CPU time (user+system) from its\n"
        "first claim to its exit, over the tokens it streamed; upd/job = row updates of eval_llmjob per job\n"
        "(PostgreSQL: pg_stat n_tup_upd, incl. lease renewals; SQLite: version bumps); prog/s/job = progress\n"
        "writes per second of streaming per job (upd/job minus the claim and the final write, over the mean job time)"
    )


# --- phases (a child process with DATABASE_URL etc. set) -------------------------------------


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
    import django

    django.setup()


def spawn_worker(concurrency, once=True):
    argv = [sys.executable, str(ROOT / "manage.py"), "process_llm_jobs", "--concurrency", str(concurrency)]
    if once:
        argv.append("--once")
    profile = os.environ.get("BENCH_PROFILE")
    if profile and once:
        # py-spy's collapsed stacks (one line per stack, its sample count last):
        # summed per function by `python bench/common.py FILE`. --gil: only the
        # thread holding the GIL is sampled, so the shares are shares of CPU.
        spy = str(Path(sys.executable).parent / "py-spy")
        argv = [spy, "record", "--format", "raw", "--rate", "250", "--gil", "--output", profile, "--", *argv]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_child(process):
    """Peak RSS (MB) and CPU seconds of the finished worker."""
    process.returncode, rss, cpu = child_usage(process.pid)
    return rss, cpu


def process_cpu(pid):
    """CPU seconds (user+system) a live process has used so far (Linux /proc), or 0.0."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_stat(sql):
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def row_updates():
    from django.db import connection

    if connection.vendor != "postgresql":
        from django.db.models import Sum

        from eval.models import LLMJob

        return LLMJob.objects.aggregate(total=Sum("version"))["total"] or 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT n_tup_upd + n_tup_hot_upd * 0 FROM pg_stat_user_tables WHERE relname = 'eval_llmjob'")
        return cursor.fetchone()[0]


def phase(args):
    setup_django()
    from django.db import connection
    from django.db.models import Sum

    from eval.jobs import create
    from eval.models import LLMJob, Task

    LLMJob.objects.all().delete()
    task, _ = Task.objects.get_or_create(source="bench", external_id="bench", defaults={"prompt": PROMPT})
    if args.phase == "throughput":
        for _ in range(args.jobs):
            create.create_job(task=task, provider=args.provider, model=args.model, params={"max_tokens": 100})
        before = row_updates()
        worker = spawn_worker(args.worker_concurrency)
        peak_connections = [0]
        cpu_at_first_claim = [None]  # the worker's CPU seconds when its first job ran: start-up left out
        stop = threading.Event()

        def sample():
            from django.db import connection as conn

            while not stop.wait(0.05 if cpu_at_first_claim[0] is None else 0.2):
                if cpu_at_first_claim[0] is None:
                    cpu = process_cpu(worker.pid)
                    if LLMJob.objects.exclude(status="queued").exists():
                        cpu_at_first_claim[0] = cpu
                count = pg_stat(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{WORKER_APP_NAME}'")
                if count is not None:
                    peak_connections[0] = max(peak_connections[0], count)
            conn.close()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rss, cpu = wait_child(worker)
        stop.set()
        sampler.join()
        if worker.returncode != 0:
            raise SystemExit(f"worker exited {worker.returncode}: {worker.stderr.read()[-2000:]}")
        done = LLMJob.objects.filter(status="succeeded")
        count = done.count()
        if count != args.jobs:
            statuses = list(LLMJob.objects.values_list("status", "error_code").distinct())
            log = worker.stderr.read()[-3000:]
            raise SystemExit(f"only {count}/{args.jobs} jobs succeeded: {statuses[:5]}\nworker said:\n{log}")
        first = min(done.values_list("started_at", flat=True))
        last = max(done.values_list("finished_at", flat=True))
        seconds = (last - first).total_seconds()
        # A job's own time (first chunk to last): the nominal 1 s per job.
        jobs_per_s = count / seconds
        durations = [(f - s).total_seconds() for s, f in done.values_list("started_at", "finished_at")]
        mean_duration = sum(durations) / len(durations)
        updates = row_updates() - before
        tokens = done.aggregate(total=Sum("output_tokens"))["total"] or 0
        result = {
            "jobs": count,
            "seconds": seconds,
            "mean_job_s": mean_duration,
            "jobs_per_s": jobs_per_s,
            "efficiency": jobs_per_s / args.worker_concurrency,
            "peak_rss_mb": rss,
            "cpu_s": cpu,
            "cpu_startup_s": cpu_at_first_claim[0],
            # CPU per streamed token from the first claim on (the start-up, mostly imports, left out)
            "cpu_us_per_token": (cpu - (cpu_at_first_claim[0] or 0)) / tokens * 1e6 if tokens else None,
            "db_connections": peak_connections[0] if connection.vendor == "postgresql" else None,
            "updates_per_job": updates / count,
            # Progress writes per second of streaming: everything but the claim and
            # the final write, over the nominal 1 s a job streams.
            "updates_per_job_second": max(0.0, updates / count - 2) / mean_duration,
        }
    else:
        result = latency_phase(args, task)
    print(json.dumps(result))
    return 0


def latency_phase(args, task):
    worker = spawn_worker(16, once=False)
    try:
        time.sleep(3)  # let it start and go idle
        claims = _claim_latencies(args, task)
        cancels = _cancel_latencies(task)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    return {
        "claim_p50_ms": statistics.median(claims),
        "claim_p99_ms": _p99(claims),
        "cancel_p99_ms": _p99(cancels),
    }


def _p99(values):
    values = sorted(values)
    return values[max(0, int(len(values) * 0.99) - 1)]


def _wait_until(condition, seconds, failure):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(failure)
        time.sleep(0.01)


def _claim_latencies(args, task):
    """Created-to-claimed of 50 jobs sent one by one to an idle worker."""
    from eval.jobs import create, states
    from eval.models import LLMJob

    jobs = []
    for _ in range(50):
        job, _ = create.create_job(task=task, provider=args.provider, model=args.model, params={"max_tokens": 100})
        time.sleep(0.1)
        jobs.append(job.pk)
    deadline = time.monotonic() + 30
    while LLMJob.objects.filter(status="queued").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    # started_at is written by the claim of the last attempt
    claims = [
        (job.started_at - job.created_at).total_seconds() * 1000
        for job in LLMJob.objects.filter(pk__in=jobs)
        if job.started_at
    ]
    _wait_until(
        lambda: not LLMJob.objects.exclude(status__in=states.TERMINAL).exists(),
        60,
        "light-load jobs did not finish within 60 s",
    )
    return claims


def _cancel_latencies(task):
    """Cancel-to-cancelled of long jobs cancelled while streaming."""
    from django.utils import timezone

    from eval.jobs import create, transitions
    from eval.models import LLMJob

    long_task = type(task).objects.create(
        source="bench", external_id=f"long-{time.time()}", prompt=" ".join(["w"] * 200)
    )
    cancel_ms = []
    for _ in range(20):
        job, _ = create.create_job(task=long_task, provider="echo", model="echo", params={"max_tokens": 500})
        _wait_until(
            lambda job=job: LLMJob.objects.get(pk=job.pk).status == "running", 30, "a job to cancel never started"
        )
        time.sleep(0.3)
        asked = timezone.now()
        transitions.request_cancel(job.pk, by="bench")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = LLMJob.objects.get(pk=job.pk)
            if row.status == "cancelled":
                cancel_ms.append((row.finished_at - asked).total_seconds() * 1000)
                break
            time.sleep(0.01)
    return cancel_ms


if __name__ == "__main__":
    sys.exit(main())
