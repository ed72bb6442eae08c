#!/usr/bin/env python
"""Results benchmark (issue 12, speed at scale): on PostgreSQL, 100,000
judgements over 20 models (2,500 tasks, one output of each model per task,
each model's outputs in its own run with automatic check results), then

1. the results computation (eval.evaluation.results.report.results) per model and
   per run (all 20 runs), its median over the rounds;
2. GET /api/results through Django's test client (auth, session, JSON).

The judgements: 70% human pairwise verdicts by 10 reviewers (half blind,
outputs of different models, a stronger model winning more often, a left
side winning a little more often), 10% LLM judge verdicts by two judge
models (each pair in both orders), 20% human scores; 2% withdrawn and 2%
superseded, so the counting has something to leave out. Inserted with
bulk_create (jobs) and COPY (judgements), then ANALYZE. A scratch database (bench_results) is
re-created each run. A measurement, not a test.

    .venv/bin/python bench/results.py [--judgements 100000] [--rounds 5]
"""

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_on_fresh_postgres  # noqa: E402

PG_BENCH_DB = "bench_results"
MODELS = 20
TASKS = 2500
REVIEWERS = 10
BATCH = 5000


def setup():
    django_on_fresh_postgres(PG_BENCH_DB)


def seed_outputs(rng):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from eval.models import LLMJob, Run, Task

    users = get_user_model().objects
    staff = users.create_user("bench", password="pw-bench-123", is_staff=True)
    reviewers = [users.create_user(f"reviewer{n}", password="pw-bench-123") for n in range(REVIEWERS)]
    checks = [{"type": "exact"}, {"type": "json_valid"}]
    runs = [
        Run.objects.create(name=f"m{n}", provider="echo", model=f"m{n:02d}", status="done", checks=checks)
        for n in range(MODELS)
    ]
    tasks = Task.objects.bulk_create(
        [Task(source="bench", external_id=f"b{n}", prompt=f"prompt {n}") for n in range(TASKS)], batch_size=BATCH
    )
    now = timezone.now()
    jobs = [
        LLMJob(
            id=uuid.uuid4(),
            task=task,
            provider="echo",
            model=run.model,
            run=run,
            status="succeeded",
            output="x",
            output_hash="h",
            prompt_hash=task.prompt_hash,
            available_at=now,
            check_results={"exact": bool(rng.random() < 0.3 + 0.02 * m), "json_valid": True},
        )
        for task in tasks
        for m, run in enumerate(runs)
    ]
    LLMJob.objects.bulk_create(jobs, batch_size=BATCH)
    judges = [
        LLMJob.objects.create(
            task=tasks[0], kind="judge", provider="echo", model=name, status="succeeded", available_at=now
        )
        for name in ("echo-judge", "echo-judge-2")
    ]
    return staff, reviewers, runs, tasks, jobs, judges


COLUMNS = (
    "id, kind, task_id, reviewer_id, judge_job_id, judge_provider, judge_model, job_a_id, job_b_id, shown_left_id, "
    "verdict, blind, answers, output_hash_a, output_hash_b, prompt_hash, rubric_id, notes, withdrawn_at, "
    "supersedes_id, judge_params, judge_prompt_version, created_at"
)


def judgement_row(n, rng, world):
    """One judgement as a COPY row: 20% scores, 10% judge verdicts, 70% human verdicts."""
    reviewers, tasks, jobs, judges, rubric_id, now = world
    t = int(rng.integers(TASKS))
    task = tasks[t]
    i, j = (int(x) for x in rng.choice(MODELS, 2, replace=False))
    a, b = jobs[t * MODELS + i], jobs[t * MODELS + j]
    kind = rng.random()
    reviewer, judge, left, verdict, answers = reviewers[n % REVIEWERS].pk, None, None, "", "{}"
    if kind < 0.2:
        b = None
        answers = json.dumps({"quality": min(5, max(1, round(rng.normal(2 + i * 0.1, 1))))})
    else:
        left = a if rng.random() < 0.5 else b
        # model i beats model j with Elo 15 * (i - j); the left side gets 5 points of share more
        p_a = 1 / (1 + 10 ** ((j - i) * 15 / 400)) + (0.05 if left is a else -0.05)
        verdict = "a" if rng.random() < p_a * 0.85 else ("b" if rng.random() < 0.8 else ("tie", "both_bad")[n % 2])
        if kind < 0.3:
            reviewer, judge = None, judges[n % 2]
    return (
        n + 1,
        "score" if b is None else "pairwise",
        task.pk,
        reviewer,
        judge.pk if judge else None,
        "echo" if judge else "",
        judge.model if judge else "",
        a.pk,
        b.pk if b else None,
        left.pk if left else None,
        verdict,
        bool(judge) or n % 2 == 1,
        answers,
        "h",
        "h" if b else "",
        task.prompt_hash,
        rubric_id,
        "",
        now if n % 50 == 1 else None,  # 2% withdrawn
        n if n % 50 == 25 else None,  # 2% superseded (by the next judgement)
        "{}",
        "",
        now,
    )


def seed_judgements(rng, count, reviewers, tasks, jobs, judges):
    from django.db import connection
    from django.utils import timezone

    from eval.evaluation.reviews import rubrics

    world = (reviewers, tasks, jobs, judges, rubrics.default_rubric().pk, timezone.now())
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY eval_judgement ({COLUMNS}) FROM STDIN") as copy:
            for n in range(count):
                copy.write_row(judgement_row(n, rng, world))
        cursor.execute("SELECT setval(pg_get_serial_sequence('eval_judgement', 'id'), %s)", [count])


def time_it(rounds, call):
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgements", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import numpy as np

    setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from eval.evaluation.results import report as results

    rng = np.random.default_rng(1)
    started = time.perf_counter()
    staff, reviewers, runs, tasks, jobs, judges = seed_outputs(rng)
    seed_judgements(rng, args.judgements, reviewers, tasks, jobs, judges)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded {args.judgements} judgements over {MODELS} models in {time.perf_counter() - started:.1f} s")

    ms, answer = time_it(args.rounds, results.results)
    print(f"results per model (PostgreSQL): {ms:.0f} ms median of {args.rounds} (bar: < 1000 ms)")
    print(
        f"  counted {answer['judgements']} judgements; {len(answer['rows'])} rows, {len(answer['segments'])} segments"
    )
    run_ids = [run.pk for run in runs]
    ms, _ = time_it(args.rounds, lambda: results.results(runs=run_ids))
    print(f"results per run, all {MODELS} runs: {ms:.0f} ms median")

    settings.SECURE_SSL_REDIRECT = False
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(staff)
    ms, response = time_it(args.rounds, lambda: client.get("/api/results"))
    assert response.status_code == 200, response.content[:300]
    print(f"GET /api/results: {ms:.0f} ms median, {len(response.content) / 1024:.0f} KiB")
    best = max(answer["rows"], key=lambda row: row["figures"][0]["rating"]["elo"])
    print(f"  e.g. top human-blind rating: {best['key']} {best['figures'][0]['rating']}")


if __name__ == "__main__":
    main()
