#!/usr/bin/env python
"""Peers of our worker on the same box and the same workload: Celery with its
threads pool and Procrastinate, each as ONE worker process over a pre-filled
queue of 1-s jobs that stream 20 chunks x 50 ms (paced on their own clock,
like the offline `echo` model bench/worker.py runs through process_llm_jobs).

  celery         Celery 5 `--pool threads -c N`, broker and result backend:
                 the local Redis (127.0.0.1:6379, database 9, flushed per row);
                 a job runs from the task's first line to its result's
                 `date_done` (the backend's own record of the end).
  procrastinate  Procrastinate 3 `run_worker(concurrency=N, wait=False)` on
                 PostgreSQL (its own database, `bench_procrastinate`, re-created
                 per row); a job runs from its `started` to its `succeeded`
                 event (the database's own timestamps).

Efficiency = jobs/s over first start to last end / (concurrency / 1 s), as in
bench/worker.py; peak RSS and CPU come from the worker's rusage. The peers do
only their own bookkeeping; ours also writes each job's progress once a second.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/peers.py [--peers ours,celery,procrastinate] [--concurrency 200,1000] [--rounds 4]

`ours` runs our worker (bench/worker.py's overhead row) in the same run, so
every row of one table was measured under the same load.

It prints a table; it is a measurement, not a pass/fail test.
"""

import argparse
import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import worker as ours  # noqa: E402
from bench.common import child_usage, pg_url, print_throughput, reset_postgres  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PG_DB = "bench_procrastinate"
QUEUE = "bench"
CHUNKS, CHUNK_SECONDS = 20, 0.05


def words():
    return [f"word{i} " for i in range(CHUNKS)]


# --- Celery ------------------------------------------------------------------------------------


def celery_app():
    import celery

    app = celery.Celery("bench_peers", broker=REDIS_URL, backend=REDIS_URL)
    app.conf.update(
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="bench.stream")
    def stream():
        started = time.time()
        text = []
        for i, word in enumerate(words()):
            time.sleep(max(0.0, started + (i + 1) * CHUNK_SECONDS - time.time()))
            text.append(word)
        return {"started": started, "text": "".join(text)}

    return app


def run_celery(concurrency, jobs):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = celery_app()
    results = [app.send_task("bench.stream") for _ in range(jobs)]
    worker = spawn("celery-worker", concurrency)
    try:
        metas = [result.get(timeout=600) and result for result in results]
    finally:
        worker.send_signal(signal.SIGTERM)  # a warm shutdown: nothing is running by now
    code, rss, cpu = child_usage(worker.pid)
    starts = [meta.result["started"] for meta in metas]
    ends = [meta.date_done.timestamp() for meta in metas]
    return figures(starts, ends, concurrency, rss, cpu, "celery", "redis")


def celery_worker(concurrency):
    app = celery_app()
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={QUEUE}",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
    )


# --- Procrastinate -----------------------------------------------------------------------------


def procrastinate_app():
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=pg_url(PG_DB)))

    @app.task(name="bench.stream", queue=QUEUE)
    async def stream():
        loop = asyncio.get_running_loop()
        started = loop.time()
        text = []
        for i, word in enumerate(words()):
            await asyncio.sleep(max(0.0, started + (i + 1) * CHUNK_SECONDS - loop.time()))
            text.append(word)
        return "".join(text)

    return app, stream


def run_procrastinate(concurrency, jobs):
    reset_postgres(PG_DB)
    app, stream = procrastinate_app()

    async def fill():
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            await stream.batch_defer_async(*[{} for _ in range(jobs)])

    asyncio.run(fill())
    worker = spawn("procrastinate-worker", concurrency)
    code, rss, cpu = child_usage(worker.pid)
    if code != 0:
        raise SystemExit(f"procrastinate worker exited {code}")
    starts, ends = procrastinate_times()
    if len(ends) != jobs:
        raise SystemExit(f"procrastinate: only {len(ends)}/{jobs} jobs succeeded")
    return figures(starts, ends, concurrency, rss, cpu, "procrastinate", "postgres")


def procrastinate_times():
    import psycopg

    with psycopg.connect(pg_url(PG_DB)) as conn:
        rows = conn.execute(
            "SELECT job_id, type::text, extract(epoch FROM at) FROM procrastinate_events "
            "WHERE type IN ('started', 'succeeded')"
        ).fetchall()
    started = {job: at for job, kind, at in rows if kind == "started"}
    ended = {job: at for job, kind, at in rows if kind == "succeeded"}
    return [float(started[job]) for job in ended], [float(at) for at in ended.values()]


def procrastinate_worker(concurrency):
    app, _ = procrastinate_app()
    app.run_worker(queues=[QUEUE], concurrency=concurrency, wait=False)


# --- shared --------------------------------------------------------------------------------------


def spawn(phase, concurrency):
    return subprocess.Popen(
        [sys.executable, __file__, "--phase", phase, "--concurrency", str(concurrency)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def figures(starts, ends, concurrency, rss, cpu, peer, broker):
    seconds = max(ends) - min(starts)
    jobs = len(ends)
    durations = [end - start for start, end in zip(starts, ends, strict=True)]
    return {
        "workload": peer,
        "config": broker,
        "concurrency": concurrency,
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_s": jobs / seconds,
        "efficiency": jobs / seconds / concurrency,
        "mean_job_s": sum(durations) / jobs,
        "peak_rss_mb": rss,
        "cpu_s": cpu,
        "cpu_us_per_token": cpu / (jobs * CHUNKS) * 1e6,
    }


def run_ours(concurrency, jobs):
    """Our worker in the same run, so the rows compare: bench/worker.py's overhead
    row (the echo model paced like the peers' jobs, the db transport on PostgreSQL)."""
    services = ours.Services()
    try:
        url, extra = ours.config_env("db-postgres", services, None)
        env = ours.child_env(url, extra)
        reset_postgres(ours.PG_BENCH_DB)
        ours.migrate(env)
        phase = ["--phase", "throughput", "--jobs", str(jobs), "--worker-concurrency", str(concurrency)]
        result = ours.run_phase([*phase, "--provider", "echo", "--model", "echo"], env)
    finally:
        services.stop()
    result.update(workload="ours", config="db/postgresql", concurrency=concurrency)
    return result


RUNNERS = {"ours": run_ours, "celery": run_celery, "procrastinate": run_procrastinate}
WORKERS = {"celery-worker": celery_worker, "procrastinate-worker": procrastinate_worker}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--peers", default="ours,celery,procrastinate", help="'ours' is our worker, in the same run")
    parser.add_argument("--concurrency", default="200,1000")
    parser.add_argument("--rounds", type=int, default=4, help="jobs = rounds x concurrency (default 4)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()
    if args.phase:
        return WORKERS[args.phase](int(args.concurrency))
    rows = []
    for peer in args.peers.split(","):
        for level in (int(c) for c in args.concurrency.split(",")):
            row = RUNNERS[peer](level, level * args.rounds)
            rows.append(row)
            print(
                f"  {peer:13} c={level:<4} eff {row['efficiency']:.3f} rss {row['peak_rss_mb']:.0f} MB "
                f"cpu {row['cpu_s']:.2f} s (mean job {row['mean_job_s']:.3f} s, {row['seconds']:.2f} s in all)",
                file=sys.stderr,
            )
    print()
    print_throughput(f"Peers (one worker process; 1-s jobs of 20 chunks x 50 ms; {datetime.date.today()})", rows)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
