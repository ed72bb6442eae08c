#!/usr/bin/env python
"""The judgements list (GET /api/judgements, what /judgements/ shows) on
PostgreSQL: bench/exports.py's seed (tasks, a share of them with two outputs,
a human score, a human verdict and an LLM judge's verdict), the outputs put in
two runs (echo in A, echo-brief in B) and the judge jobs in a judge run J;
then each filter a results link or a run page uses, first page and a page
deep in the keyset, timed through Django's test client (the view, the query
and the JSON, no HTTP). Median of REPEATS calls after a warm-up.

A scratch database (bench_judgements) is re-created each run. A measurement, not a test.

    .venv/bin/python bench/judgements.py [--tasks 100000] [--judged-share 0.1]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import exports as seeding  # noqa: E402
from bench.common import django_on_fresh_postgres  # noqa: E402

PG_BENCH_DB = "bench_judgements"
REPEATS = 15


def put_in_runs():
    """Runs A (echo), B (echo-brief) and a judge run J over them; the seeded jobs moved into them."""
    from eval.models import LLMJob, Run

    a = Run.objects.create(name="A", provider="echo", model="echo", status="done")
    b = Run.objects.create(name="B", provider="echo", model="echo-brief", status="done")
    judge = Run.objects.create(
        name="J", kind="judge", provider="echo", model="echo-judge", status="done", compare_a=a, compare_b=b
    )
    LLMJob.objects.filter(kind="generate", model="echo").update(run=a)
    LLMJob.objects.filter(kind="generate", model="echo-brief").update(run=b)
    LLMJob.objects.filter(kind="judge").update(run=judge)
    return a.pk, b.pk, judge.pk


def timed(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:200])
    spans = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = client.get(url)
        spans.append(time.perf_counter() - started)
    return statistics.median(spans) * 1000, len(response.json()["judgements"]), response.json()["next"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--judged-share", type=float, default=0.1)
    args = parser.parse_args()
    django_on_fresh_postgres(PG_BENCH_DB)
    started = time.perf_counter()
    seeding.seed_tasks(args.tasks)
    judgements = seeding.seed_judgements(args.judged_share)
    a, b, j = put_in_runs()
    seeding.vacuum()
    print(f"seeded {args.tasks} tasks and {judgements} judgements in {time.perf_counter() - started:.1f} s")

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from eval.models import Judgement

    settings.SECURE_SSL_REDIRECT = False  # production settings; the test client speaks plain HTTP
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    middle = Judgement.objects.order_by("id").values_list("id", flat=True)[judgements // 2]
    queries = {
        "all, first page": "",
        "all, a page halfway": f"after={middle}",
        f"run={a} (a run page)": f"run={a}",
        f"run={j} (a judge run)": f"run={j}",
        f"run={a},{b} (a win-rate cell)": f"run={a},{b}&runs={a},{b}&kind=pairwise&judge=echo/echo-judge",
        "model=echo/echo, humans blind (a row)": "model=echo/echo&judged_by=human&blind=true",
        "model pair, a page halfway": f"model=echo/echo,echo/echo-brief&after={middle}",
    }
    print(f"load average: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs); median of {REPEATS} calls")
    print(f"{'GET /api/judgements':44} {'ms':>7} {'rows':>5}")
    for label, query in queries.items():
        ms, rows, _ = timed(client, "/api/judgements" + ("?" + query if query else ""))
        print(f"{label:44} {ms:>7.1f} {rows:>5}")


if __name__ == "__main__":
    main()
