#!/usr/bin/env python
"""Blind pairs benchmark (issue 18): what "blind is a fact" costs.

On PostgreSQL, ``--tasks`` tasks with three models' outputs each (three
pairs per task), seeded with bulk inserts; a reviewer who has been shown the
models of ``--seen`` outputs (ModelSeen rows) and has judged ``--judged``
pairs. Timed in-process (the ORM and the database, no HTTP):

- ``next_pair``: the serving path of ``GET /api/pairs/next`` (candidates,
  counts, what the reviewer knows, the order; one assignment row written).
- ``mark poll (new)``: the record a poll answer makes for 3 jobs not seen yet
  (one INSERT ... ON CONFLICT DO NOTHING), ``(cached)`` the same again (no
  query: the process remembers it), ``mark_task``: the review page's.

A scratch database (bench_pairs) is re-created each run. A measurement, not a test.

    .venv/bin/python bench/pairs.py [--tasks 2000] [--seen 1500] [--judged 300] [--repeat 15]
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

PG_BENCH_DB = "bench_pairs"
MODELS = ("echo", "echo-brief", "echo-reverse")
BATCH = 5000


def seed(tasks, seen_count, judged):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from eval.models import Judgement, LLMJob, ModelSeen, Rubric, Task
    from eval.models.tasks import prompt_fingerprint

    user = get_user_model().objects.create_user("bench-reviewer", is_staff=True)
    now = timezone.now()
    Task.objects.bulk_create(
        [
            Task(
                source="bench",
                external_id=f"b{i}",
                title=f"Task {i}",
                prompt=f"Prompt {i}",
                prompt_hash=prompt_fingerprint(f"Prompt {i}", ""),
            )
            for i in range(tasks)
        ],
        batch_size=BATCH,
    )
    jobs = [
        LLMJob(
            task_id=task_id,
            provider="echo",
            model=model,
            status="succeeded",
            output=f"{model} answer {task_id}",
            output_hash=f"{task_id:032d}{n:032d}",
            prompt_hash=prompt_hash,
            available_at=now,
        )
        for task_id, prompt_hash in Task.objects.values_list("id", "prompt_hash")
        for n, model in enumerate(MODELS)
    ]
    LLMJob.objects.bulk_create(jobs, batch_size=BATCH)
    ModelSeen.objects.bulk_create([ModelSeen(user=user, job=job) for job in jobs[:seen_count]], batch_size=BATCH)
    rubric = Rubric.objects.order_by("id").first() or Rubric.objects.create(name="bench")
    start = seen_count + (-seen_count % 3)  # judged pairs on tasks whose outputs were not seen
    Judgement.objects.bulk_create(
        [
            Judgement(
                kind="pairwise",
                task_id=jobs[i].task_id,
                reviewer=user,
                job_a=jobs[i],
                job_b=jobs[i + 1],
                output_hash_a=jobs[i].output_hash,
                output_hash_b=jobs[i + 1].output_hash,
                prompt_hash=jobs[i].prompt_hash,
                rubric=rubric,
                verdict="a",
                blind=True,
            )
            for i in range(start, min(start + 3 * judged, len(jobs) - 1), 3)
        ],
        batch_size=BATCH,
    )
    return user, jobs


def timed(call, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seen", type=int, default=1500)
    parser.add_argument("--judged", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    django_on_fresh_postgres(PG_BENCH_DB)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from eval.evaluation.reviews import pairs, seen
    from eval.models import PairAssignment

    user, jobs = seed(args.tasks, args.seen, args.judged)
    print(f"{args.tasks} tasks x {len(MODELS)} models, {args.seen} outputs seen, {args.judged} pairs judged")
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'path':22} {'median ms':>9} {'max ms':>7} {'queries':>7}")

    def next_pair():
        PairAssignment.objects.filter(user=user).delete()  # a fresh assignment each time
        assignment, remaining = pairs.next_pair(user)
        assert assignment is not None and remaining > 0

    fresh = iter(range(len(jobs) - 3 * (args.repeat + 2), len(jobs), 3))

    def mark_new():
        start = next(fresh)
        seen.mark_jobs(user.pk, [job.pk for job in jobs[start : start + 3]])

    last = jobs[-3:]
    for name, call in (
        ("next_pair", next_pair),
        ("mark poll (new)", mark_new),
        ("mark poll (cached)", lambda: seen.mark_jobs(user.pk, [job.pk for job in last])),
        ("mark_task (review page)", lambda: seen.mark_task(user.pk, last[0].task_id)),
    ):
        with CaptureQueriesContext(connection) as queries:
            call()
        median, worst = timed(call, args.repeat)
        print(f"{name:22} {median:9.2f} {worst:7.2f} {len(queries):7}")
        if os.environ.get("BENCH_SQL"):
            for query in queries:
                print("   ", query["sql"][:160])
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
