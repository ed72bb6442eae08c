#!/usr/bin/env python
"""Run benchmark (issue 11, scale): on PostgreSQL,

1. the creation of a run over 10,000 tasks: selection, estimate, budget
   reservation and 10,000 jobs inserted and published in batches of 1,000
   (one transaction per batch), timed end to end through runs.create_run;
2. the database time of an unchanged GET /api/runs/<id> at 10,000 jobs: the
   request through Django's test client with If-None-Match (auth, session,
   the ETag statement), its queries' own timings summed (connection.queries),
   and EXPLAIN ANALYZE of the ETag statement (the run row's version and the
   newest updated_at of its jobs through llmjob_run_updated_idx).

A scratch database (bench_runs) is re-created each run. A measurement, not a test.

    .venv/bin/python bench/runs.py [--tasks 10000] [--rounds 5]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_on_fresh_postgres  # noqa: E402

PG_BENCH_DB = "bench_runs"


def setup(tasks):
    django_on_fresh_postgres(PG_BENCH_DB)
    from django.contrib.auth import get_user_model

    from eval.models import Task

    Task.objects.bulk_create(
        [Task(source="bench", external_id=f"b{i}", prompt=f"prompt number {i} " * 20) for i in range(tasks)],
        batch_size=2000,
    )
    return get_user_model().objects.create_user("bench", password="pw-bench-123", is_staff=True)


def create_run(user, tasks):
    from eval.evaluation.runs import services as runs
    from eval.models import LLMJob

    started = time.perf_counter()
    run = runs.create_run(user=user, data={"name": "bench", "provider": "echo", "model": "echo"})
    elapsed = time.perf_counter() - started
    assert LLMJob.objects.filter(run=run).count() == tasks
    return run, elapsed


def unchanged_poll(user, run, rounds):
    from django.conf import settings
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.SECURE_SSL_REDIRECT = False
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(user)
    tag = client.get(f"/api/runs/{run.pk}")["ETag"]
    timings, counts = [], []
    for _ in range(rounds):
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/runs/{run.pk}", HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304
        timings.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        counts.append(len(captured.captured_queries))
    return statistics.median(timings), max(counts)


def explain(run, rounds):
    from django.db import connection

    from eval.evaluation.runs.report import _STATE_SQL

    times, plan = [], []
    with connection.cursor() as cursor:
        for _ in range(rounds):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + _STATE_SQL, [run.pk])
            plan = [row[0] for row in cursor.fetchall()]
            times.append(sum(float(line.split(":")[1].split()[0]) for line in plan if "Time:" in line))
    return statistics.median(times), plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    user = setup(args.tasks)
    run, elapsed = create_run(user, args.tasks)
    print(f"create a run over {args.tasks} tasks (PostgreSQL): {elapsed:.2f} s (bar: < 5 s)")
    poll_ms, queries = unchanged_poll(user, run, args.rounds)
    print(
        f"unchanged GET /api/runs/<id> at {args.tasks} jobs: {poll_ms:.2f} ms DB time over {queries} queries "
        "(session, user, ETag state; bar: <= 2 ms)"
    )
    plan_ms, plan = explain(run, args.rounds)
    print(f"ETag statement, EXPLAIN ANALYZE planning + execution: {plan_ms:.3f} ms")
    for line in plan:
        print("   ", line)


if __name__ == "__main__":
    main()
