"""What the daemon's alert step costs a pass on a big job table (PostgreSQL).

    .venv/bin/python -m bench.alerts [--jobs 300000]

Seeds finished and queued jobs over a day (one provider in ten with an auth
error as its latest decisive job), then times the snapshot the rules read
and one whole step with nothing to send, and prints the plans of the two
job-table queries (they should use llmjob_provider_finished_idx).
"""

import argparse
import statistics
import time

from bench.common import django_on_fresh_postgres

SEED_SQL = """
INSERT INTO eval_llmjob (id, kind, task_id, provider, model, params, priority, prompt_hash, hidden, prompt_text,
    check_results, status, progress, message, output, output_hash, stop_reason, error_code, error_message, attempts,
    max_attempts, available_at, cancel_requested, cancel_requested_by, worker_id, idempotency_key, idempotency_hash,
    version, created_at, finished_at, updated_at)
SELECT gen_random_uuid(), 'generate', %(task)s, (ARRAY['anthropic','gemini','echo'])[1 + n %% 3], 'm', '{}', 10, '',
    false, '', '{}',
    CASE WHEN n %% 1000 = 0 THEN 'queued' WHEN n %% 7 = 0 THEN 'failed' ELSE 'succeeded' END,
    100, '', '', '', '', CASE WHEN n %% 7 = 0 THEN 'server_error' ELSE '' END, '', 1, 3, now(), false, '', '', '', '',
    1, now() - make_interval(secs => n %% 86400),
    CASE WHEN n %% 1000 = 0 THEN NULL ELSE now() - make_interval(secs => n %% 86400) END, now()
FROM generate_series(1, %(count)s) AS n
"""


def timed(call, repeat=20):
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300_000)
    args = parser.parse_args()
    django_on_fresh_postgres("bench_alerts")

    from django.db import connection
    from django.utils import timezone

    from eval.alerts import snapshot
    from eval.alerts.step import run_step
    from eval.models import LLMJob, Task

    task = Task.objects.create(source="bench", external_id="1", title="t", prompt="p")
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"task": task.pk, "count": args.jobs})
        cursor.execute(
            "UPDATE eval_llmjob SET status = 'failed', error_code = 'auth' WHERE provider = 'gemini' AND finished_at = "
            "(SELECT max(finished_at) FROM eval_llmjob WHERE provider = 'gemini')"
        )
        cursor.execute("ANALYZE eval_llmjob")
    now = timezone.now()
    print(f"{LLMJob.objects.count()} jobs")
    print(f"snapshot.read: {timed(lambda: snapshot.read(now, 600)):.1f} ms (median of 20)")
    print(f"run_step (no channels): {timed(lambda: run_step(now), repeat=10):.1f} ms (median of 10)")
    window = snapshot.LLMJob.objects.filter(provider__in=["anthropic", "echo", "gemini"], finished_at__gte=now)
    print("window plan:", window.values("status").explain())
    print("latest decisive plan:", LLMJob.objects.filter(provider="gemini").order_by("-finished_at")[:1].explain())


if __name__ == "__main__":
    main()
