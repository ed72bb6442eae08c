#!/usr/bin/env python
"""Fault: a worker killed with -9 in the middle of its jobs; how long until
they all ran again and ended.

One transport per run, on a scratch PostgreSQL database (dropped and
re-created) and, for ``pubsub``, the official emulator: a daemon
(``manage.py run_daemon``, SYNC_INTERVAL_SECONDS=10) runs throughout; --jobs
echo jobs of --words words at ECHO_CHUNK_DELAY_MS=300 (~9 s each) are queued;
a worker (bench/crash_worker.py: ``process_llm_jobs`` recording each
message's delivery attempt) with concurrency 100 starts them; --kill-after
seconds after the first one runs it is killed with SIGKILL and a new worker
is started at once. Printed: seconds from the kill until every job the dead
worker held was running again (or had ended) and until the last job ended;
the highest delivery attempt of any message; attempts per job; final
statuses; the load average.

    .venv/bin/python bench/fault_crash.py [--transport pubsub|db|both] [--lease 60]

``measure()`` is what bench/faults.py --crash runs (both transports, each in
a child process: Django's settings are read once per process).
"""

import argparse
import collections
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_on_fresh_postgres  # noqa: E402

POLL_SECONDS = 0.25


def scenario_env(transport, args, workdir):
    env = {
        "JOB_TRANSPORT": transport,
        "JOB_LEASE_SECONDS": str(args.lease),
        "ECHO_CHUNK_DELAY_MS": str(args.chunk_delay_ms),
        "SYNC_INTERVAL_SECONDS": str(args.sync_interval),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_LOCAL_DIR": str(workdir),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "CRASH_BENCH_ATTEMPTS": str(Path(workdir) / "deliveries.txt"),
    }
    if transport == "pubsub":
        name = uuid.uuid4().hex[:8]
        env.update(
            PUBSUB_PROJECT_ID="bench-crash",
            PUBSUB_TOPIC=f"jobs-{name}",
            PUBSUB_SUBSCRIPTION=f"worker-{name}",
            PUBSUB_DEAD_LETTER_TOPIC=f"dead-{name}",
        )
    return env


class Processes:
    """The daemon and the workers, each logging to a file in ``workdir``."""

    def __init__(self, workdir, concurrency):
        self.workdir = Path(workdir)
        self.concurrency = concurrency
        self.started = []

    def start(self, name, argv):
        with open(self.workdir / f"{name}.log", "w") as log:
            process = subprocess.Popen(argv, cwd=ROOT, env=os.environ, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def worker(self, name):
        worker = ROOT / "bench" / "crash_worker.py"
        return self.start(name, [sys.executable, str(worker), "--concurrency", str(self.concurrency)])

    def daemon(self):
        return self.start("daemon", [sys.executable, "manage.py", "run_daemon"])

    def stop_all(self):
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def queue_jobs(n, words):
    from eval.jobs import create, outbox
    from eval.models import Task

    ids = []
    for i in range(n):
        prompt = " ".join(f"w{i}-{k}" for k in range(words))
        task = Task.objects.create(source="bench", external_id=f"crash-{i}", title=f"Crash {i}", prompt=prompt)
        job, _ = create.create_job(task=task, provider="echo", model="echo")
        ids.append(job.pk)
    outbox.background.flush(60)
    return ids


def rows():
    from eval.models import LLMJob

    return {
        job_id: (status, worker) for job_id, status, worker in LLMJob.objects.values_list("id", "status", "worker_id")
    }


def wait_for_first_running(timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(status == "running" for status, _ in rows().values()):
            return
        time.sleep(0.05)
    raise RuntimeError(f"no job started within {timeout} s")


def follow(held, dead_worker, killed_at, limit):
    """Poll until every job ended (or ``limit`` s): (all held running again at, last ended at), s after the kill."""
    restarted = {}
    while time.monotonic() - killed_at < limit:
        now = time.monotonic() - killed_at
        current = rows()
        for job_id in held:
            status, worker = current[job_id]
            if job_id not in restarted and (status != "running" or worker != dead_worker) and status != "queued":
                restarted[job_id] = now
        if all(status in ("succeeded", "failed", "cancelled") for status, _ in current.values()):
            return max(restarted.values(), default=0.0), now
        time.sleep(POLL_SECONDS)
    return (max(restarted.values()) if len(restarted) == len(held) else None), None


def delivery_attempts(path):
    """(highest delivery attempt, messages received) from the workers' records."""
    if not os.path.exists(path):
        return None, 0
    attempts = [int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.strip()]
    return max(attempts, default=None), len(attempts)


def outcome(ids):
    from eval.models import LLMJob

    jobs = list(LLMJob.objects.filter(id__in=ids).select_related("task"))
    return {
        "attempts_per_job": dict(sorted(collections.Counter(job.attempts for job in jobs).items())),
        "statuses": dict(collections.Counter(job.status for job in jobs)),
        "outputs_right": sum(job.output == job.task.prompt for job in jobs),
    }


def run(transport, args):
    with tempfile.TemporaryDirectory(prefix=f"fault-crash-{transport}-") as workdir:
        os.environ.update(scenario_env(transport, args, workdir))
        emulator = None
        if transport == "pubsub":
            from tests.fakes.pubsub_emulator import PubSubEmulator

            emulator = PubSubEmulator()
            os.environ["PUBSUB_EMULATOR_HOST"] = emulator.start()
        django_on_fresh_postgres(args.database or f"evalbench_crash_{transport}")
        logging.getLogger().setLevel(logging.WARNING)  # this process; the workers and the daemon log at INFO
        from django.core.management import call_command

        if transport == "pubsub":
            call_command("pubsub_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115 (closed at exit)
        processes = Processes(workdir, args.concurrency)
        try:
            return _scenario(transport, args, processes, workdir)
        finally:
            processes.stop_all()
            if args.keep_logs:
                subprocess.run(["cp", "-r", workdir, args.keep_logs], check=False)
            if emulator is not None:
                emulator.stop()


def _scenario(transport, args, processes, workdir):
    processes.daemon()
    ids = queue_jobs(args.jobs, args.words)
    first = processes.worker("worker-1")
    wait_for_first_running()
    time.sleep(args.kill_after)
    first.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.wait()
    processes.worker("worker-2")
    before = rows()
    running = [job_id for job_id, (status, _) in before.items() if status == "running"]
    dead_worker = before[running[0]][1] if running else ""
    restarted, last = follow(running, dead_worker, killed_at, args.limit)
    highest, messages = delivery_attempts(os.environ["CRASH_BENCH_ATTEMPTS"])
    return {
        "transport": transport,
        "lease": args.lease,
        "held_at_kill": len(running),
        "done_at_kill": sum(status == "succeeded" for status, _ in before.values()),
        "all_running_again_s": restarted,
        "last_job_s": last,
        "highest_delivery_attempt": highest,
        "messages_received": messages,
        "load": os.getloadavg(),
        **outcome(ids),
    }


def report(result):
    def secs(value):
        return "not within the limit" if value is None else f"{value:.1f} s"

    load = " ".join(f"{x:.2f}" for x in result["load"])
    print(
        f"  {result['transport']:6} lease {result['lease']:g} s: {result['held_at_kill']} held at the kill "
        f"({result['done_at_kill']} done); all running again {secs(result['all_running_again_s'])}, "
        f"last job {secs(result['last_job_s'])} after the kill"
    )
    print(
        f"         highest delivery attempt {result['highest_delivery_attempt']}, "
        f"{result['messages_received']} messages received; attempts per job {result['attempts_per_job']}; "
        f"statuses {result['statuses']}; outputs right {result['outputs_right']}; load average {load}"
    )


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=["pubsub", "db", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--chunk-delay-ms", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--lease", type=float, default=60)
    parser.add_argument("--sync-interval", type=float, default=10)
    parser.add_argument("--kill-after", type=float, default=3.5)
    parser.add_argument("--limit", type=float, default=900, help="give up waiting after this many seconds")
    parser.add_argument("--database", default="", help="scratch database (default evalbench_crash_<transport>)")
    parser.add_argument("--keep-logs", default="", help="copy the processes' logs to this directory")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser.parse_args(argv)


def child_argv(args):
    """The options of this run, for a child running one transport."""
    names = ("jobs", "words", "chunk_delay_ms", "concurrency", "lease", "sync_interval", "kill_after", "limit")
    argv = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in names]
    return argv + ([f"--keep-logs={args.keep_logs}"] if args.keep_logs else [])


def measure(argv=()):
    """Both transports, each in a child process; their results (dicts)."""
    results = []
    for transport in ("pubsub", "db"):
        command = [sys.executable, __file__, "--transport", transport, "--json", *argv]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main(argv=None):
    args = parse(argv)
    results = measure(child_argv(args)) if args.transport == "both" else [run(args.transport, args)]
    if args.json:
        print(json.dumps(results[0]))
        return
    print(f"Worker crash (kill -9 mid-job, a new worker at once), {os.cpu_count()} CPUs:")
    for result in results:
        report(result)


if __name__ == "__main__":
    main()
