#!/usr/bin/env python
"""Comparison benchmark (issue 22): on PostgreSQL, two runs over 10,000 tasks
with a check each (10% of B's outputs failing it, 5% of A's) and a judge run
that compared them with swap (20,000 judgements), then

1. the service alone: compare.build + summary + the first page of rows;
   (the per-task join is one statement: a window over both runs' ended jobs,
   pivoted per task, the check results read from the JSON in SQL);
2. ``GET /api/runs/compare?a=A&b=B`` end to end through Django's test client
   (auth, the per-task join in SQL, the verdict queries, the summary, the
   first page of 50 rows with their jobs), and the same with
   ``only=regressions``;

median and worst of --rounds, wall clock. The bar: under 1 s. A scratch
database (bench_compare) is re-created each run. A measurement, not a test.

    .venv/bin/python bench/compare.py [--tasks 10000] [--rounds 7]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_on_fresh_postgres  # noqa: E402

PG_BENCH_DB = "bench_compare"


def _job(run, task, output, passed, **fields):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from eval.jobs.fields import output_hash
    from eval.models import LLMJob

    now = timezone.now()
    return LLMJob(
        task=task, run=run, provider="echo", model=run.model, status="succeeded", output=output,
        output_hash=output_hash(output), prompt_hash=task.prompt_hash, check_results={"exact": passed},
        input_tokens=40, output_tokens=len(output.split()), cost_usd=Decimal("0.0001"), available_at=now,
        started_at=now - timedelta(seconds=2), finished_at=now, stop_reason="end_turn", **fields,
    )  # fmt: skip


def setup(n):
    django_on_fresh_postgres(PG_BENCH_DB)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from eval.models import Judgement, LLMJob, Rubric, Run, Task, prompt_fingerprint

    user = get_user_model().objects.create_user("bench", password="pw-bench-123", is_staff=True)
    prompts = [f"prompt {i} " * 20 for i in range(n)]
    Task.objects.bulk_create(  # bulk_create does not call save(), which sets prompt_hash
        [
            Task(source="bench", external_id=f"b{i}", prompt=p, reference="r", prompt_hash=prompt_fingerprint(p, "r"))
            for i, p in enumerate(prompts)
        ],
        batch_size=2000,
    )
    tasks = list(Task.objects.order_by("id"))
    make = {"created_by": user, "provider": "echo", "status": "done", "checks": [{"type": "exact"}]}
    a = Run.objects.create(name="A", model="echo", **make)
    b = Run.objects.create(name="B", model="echo-brief", **make)
    judge = Run.objects.create(name="J", model="echo-judge", kind="judge", compare_a=a, compare_b=b, swap=True, **make)
    jobs_a = [_job(a, t, f"answer {i}", i % 20 != 0) for i, t in enumerate(tasks)]
    jobs_b = [_job(b, t, f"answer {i}" if i % 3 else "other", i % 10 != 0) for i, t in enumerate(tasks)]
    LLMJob.objects.bulk_create(jobs_a + jobs_b, batch_size=2000)
    judges = [
        _job(judge, t, "{}", True, kind="judge", judged_a=x, judged_b=y)
        for t, ja, jb in zip(tasks, jobs_a, jobs_b, strict=True)
        for x, y in ((ja, jb), (jb, ja))
    ]
    LLMJob.objects.bulk_create(judges, batch_size=2000)
    rubric = Rubric.objects.create(name="bench", questions=[])
    Judgement.objects.bulk_create(
        [
            Judgement(
                kind="pairwise",
                task_id=j.task_id,
                judge_job=j,
                job_a=j.judged_a,
                job_b=j.judged_b,
                output_hash_a="x",
                output_hash_b="y",
                prompt_hash=j.prompt_hash,
                rubric=rubric,
                verdict="a" if n % 7 else "b",
                shown_left=j.judged_a,
            )  # fmt: skip
            for n, j in enumerate(judges)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have by now (the pairs statement does not need it)
    return user, a, b


def timed(call, rounds):
    """(median wall, worst wall, median CPU of this process): on a shared box the wall
    clock carries other processes' load; the CPU time is this process's own work
    (the database server's is not in it)."""
    times, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(times), max(times), statistics.median(cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    user, a, b = setup(args.tasks)
    from django.conf import settings
    from django.test import Client

    from eval.evaluation.compare import service

    settings.SECURE_SSL_REDIRECT = False
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(user)

    def build():
        comparison = service.build(a, b)
        service.summary(comparison)
        service.rows(comparison, staff=True)

    def api(query=""):
        response = client.get(f"/api/runs/compare?a={a.pk}&b={b.pk}{query}")
        assert response.status_code == 200, response.content[:200]
        return response

    summary = api().json()["summary"]
    print(f"{args.tasks} tasks, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"summary: {summary['checks']} {[(v['a_wins'], v['b_wins']) for v in summary['verdicts']]}")
    for name, call in (
        ("service: build + summary + first page", build),
        ("GET /api/runs/compare", api),
        ("GET /api/runs/compare?only=regressions", lambda: api("&only=regressions")),
    ):
        median, worst, cpu = timed(call, args.rounds)
        print(
            f"{name:40} median {median * 1000:6.0f} ms, worst {worst * 1000:6.0f} ms, "
            f"CPU here {cpu * 1000:5.0f} ms (bar: < 1000 ms); load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
