#!/usr/bin/env python
"""Export benchmark (issue 12, speed): on PostgreSQL, 100,000 tasks (a tenth
of them with two outputs, a human score, a human pairwise verdict, an LLM
judge's verdict and a review) seeded with bulk inserts; then each export
run as ``manage.py export_reviews ... -o FILE`` in a child process, timed
from spawn to exit (Django's start-up included) with the child's own peak
RSS (``os.wait4``'s rusage). The bar (issue 12): 20,000 rows/s or more with
a peak RSS under 150 MB for the 100,000-task exports.

A scratch database (bench_exports) is re-created each run. A measurement, not a test.

    .venv/bin/python bench/exports.py [--tasks 100000] [--judged-share 0.1] [--reuse]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_on_fresh_postgres, pg_url  # noqa: E402

PG_BENCH_DB = "bench_exports"
BATCH = 5000
PROMPT = "Summarise the following passage in two sentences, keeping every figure it quotes. " * 4
HEADER = (
    f"{'export':18} {'rows':>7} {'wall s':>7} {'rows/s':>8} {'cmd s':>6} {'cmd rows/s':>10} {'CPU s':>6} "
    f"{'peak RSS':>9} size"
)
OUTPUT = "The passage says that the figures rose by a third over the decade, and that most of it came late. " * 5


def setup():
    django_on_fresh_postgres(PG_BENCH_DB)


def seed_tasks(count):
    from eval.models import Task
    from eval.models.tasks import prompt_fingerprint

    for start in range(0, count, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, count)):
            prompt, reference = f"{PROMPT}[{i}]", f"=reference {i}, with a comma"
            batch.append(
                Task(
                    source="bench",
                    external_id=f"b{i}",
                    title=f"Task {i}: «unicode»",
                    prompt=prompt,
                    reference=reference,
                    metadata={"n": i},
                    prompt_hash=prompt_fingerprint(prompt, reference),
                )
            )
        Task.objects.bulk_create(batch)


def _jobs(tasks, user, now):
    from eval.models import LLMJob

    jobs = []
    for task in tasks:
        for model in ("echo", "echo-brief"):
            jobs.append(
                LLMJob(
                    task_id=task.id,
                    created_by=user,
                    provider="echo",
                    model=model,
                    status="succeeded",
                    output=OUTPUT,
                    output_hash="h" * 64,
                    prompt_hash=task.prompt_hash,
                    available_at=now,
                    published_at=now,
                )
            )
    LLMJob.objects.bulk_create(jobs, batch_size=BATCH)
    judges = [
        LLMJob(task_id=t.id, kind="judge", provider="echo", model="echo-judge", status="succeeded", available_at=now)
        for t in tasks
    ]
    LLMJob.objects.bulk_create(judges, batch_size=BATCH)
    return jobs, judges


def seed_judgements(share):
    """A ``share`` of the tasks: two outputs, a score, a verdict, a judge's verdict, a review."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from eval.evaluation.reviews.rubrics import default_rubric
    from eval.models import Judgement, Review, Task

    user = get_user_model().objects.create_user("bench", password="pw-bench-123", is_staff=True)
    rubric, now = default_rubric(), timezone.now()
    step = max(1, round(1 / share))
    tasks = list(Task.objects.only("id", "prompt_hash").order_by("id")[::step])
    jobs, judges = _jobs(tasks, user, now)
    rows, reviews = [], []
    for n, task in enumerate(tasks):
        a, b, judge = jobs[2 * n], jobs[2 * n + 1], judges[n]
        common = {"task_id": task.id, "prompt_hash": task.prompt_hash, "rubric": rubric, "output_hash_a": "h" * 64}
        rows.append(Judgement(kind="score", reviewer=user, job_a=a, answers={"quality": 1 + n % 5}, **common))
        pair = {"job_a": a, "job_b": b, "output_hash_b": "h" * 64, "verdict": "ab"[n % 2], **common}
        rows.append(Judgement(kind="pairwise", reviewer=user, notes="+looks fine", blind=True, **pair))
        judged_by = {"judge_job": judge, "judge_provider": "echo", "judge_model": "echo-judge"}
        rows.append(Judgement(kind="pairwise", **judged_by, **pair))
        reviews.append(Review(task_id=task.id, reviewer=user, rating=1 + n % 5, preferred_job=a, notes="ok"))
    Judgement.objects.bulk_create(rows, batch_size=BATCH)
    Review.objects.bulk_create(reviews, batch_size=BATCH)
    return len(rows)


def vacuum():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def run_export(what, fmt, target):
    """(rows, wall s, the command's own s, CPU s, peak RSS MB) of one export in a child process."""
    command = [sys.executable, "manage.py", "export_reviews", "--what", what, "--format", fmt, "-o", str(target)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=os.environ, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read()
    child.stderr.close()
    if child.returncode:
        raise SystemExit(f"export_reviews {what} {fmt} failed ({child.returncode}): {err}")
    found = re.search(r"exported (\d+) \w+ to .* in ([\d.]+) s", err)
    cpu = usage.ru_utime + usage.ru_stime
    return int(found.group(1)), wall, float(found.group(2)), cpu, usage.ru_maxrss / 1024


def seed(tasks, share):
    setup()
    started = time.perf_counter()
    seed_tasks(tasks)
    judgements = seed_judgements(share)
    vacuum()
    print(f"seeded {tasks} tasks and {judgements} judgements in {time.perf_counter() - started:.1f} s (PostgreSQL)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--judged-share", type=float, default=0.1)
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reuse", action="store_true", help="export the database the last run seeded")
    args = parser.parse_args()
    if args.seed_only:
        return seed(args.tasks, args.judged_share)
    # Seeded in a child: a child forked from a parent holding the seed's rows
    # would count the parent's pages in its own peak RSS.
    seeding = [sys.executable, __file__, "--seed-only", "--tasks", str(args.tasks)]
    if not args.reuse:
        subprocess.run([*seeding, "--judged-share", str(args.judged_share)], check=True)
    os.environ.update(DJANGO_SETTINGS_MODULE="coreproject.settings", DATABASE_URL=pg_url(PG_BENCH_DB), DJANGO_DEBUG="0")
    print(f"load average before the exports: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(HEADER)
    with tempfile.TemporaryDirectory() as scratch:
        for what, fmt in (("tasks", "jsonl"), ("tasks", "csv"), ("judgements", "jsonl"), ("pairs", "jsonl")):
            target = Path(scratch) / f"{what}.{fmt}"
            rows, wall, own, cpu, rss = run_export(what, fmt, target)
            size = target.stat().st_size / 1e6
            print(
                f"{what + '.' + fmt:18} {rows:>7} {wall:>7.2f} {rows / wall:>8.0f} {own:>6.2f} {rows / own:>10.0f} "
                f"{cpu:>6.2f} {rss:>6.0f} MB {size:>5.0f} MB"
            )
    print("bar (tasks, 100,000): >= 20,000 rows/s wall, peak RSS < 150 MB")


if __name__ == "__main__":
    main()
