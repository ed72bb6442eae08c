"""The provider-wide rate limit (eval/worker/provider_rate_limit.py), in one process and across processes."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from eval.jobs import create
from eval.models import JobStatus, LLMJob, ProviderRateSlot
from eval.worker import provider_rate_limit as ratelimit
from eval.worker.provider_rate_limit import acquire, try_acquire
from eval.worker.service import serve
from tests.conftest import test_database_url

ROOT = Path(__file__).resolve().parent.parent


def assert_never_over(grants, limit, window):
    """``grants`` are (before, after) clock readings around each granted call.

    Any limit+1 grants hold two through the same slot, granted at least a
    window apart, so the span from the first call's start to the last
    call's end must be at least a window."""
    grants = sorted(grants)
    for i in range(len(grants) - limit):
        group = grants[i : i + limit + 1]
        span = max(after for _, after in group) - group[0][0]
        assert span >= window, f"{limit + 1} grants within {span:.3f} s (window {window} s) at #{i}"


# --- the sync API, with an explicit clock ----------------------------------------------


@pytest.mark.django_db
def test_no_limit_grants_at_once_and_writes_nothing(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 0
    assert [try_acquire("anthropic") for _ in range(100)] == [0.0] * 100
    assert ratelimit.limit_for("echo") == 0 and try_acquire("echo") == 0.0
    assert ratelimit.limit_for("no such provider!") == 0
    assert not ProviderRateSlot.objects.exists()


@pytest.mark.django_db
def test_a_burst_up_to_the_limit_then_a_wait_for_the_oldest_slot(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 3
    assert [try_acquire("anthropic", now=1000.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert try_acquire("anthropic", now=1000.0) == pytest.approx(60.0)
    assert try_acquire("anthropic", now=1030.5) == pytest.approx(29.5)
    assert ProviderRateSlot.objects.filter(provider="anthropic").count() == 3
    # A minute later the whole burst is available again.
    assert [try_acquire("anthropic", now=1060.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert try_acquire("anthropic", now=1060.0) == pytest.approx(60.0)


@pytest.mark.django_db
def test_the_window_slides(settings):
    settings.GEMINI_REQUESTS_PER_MINUTE = 3
    for now in (1000.0, 1020.0, 1040.0):
        assert try_acquire("gemini", now=now) == 0.0
    assert try_acquire("gemini", now=1059.0) == pytest.approx(1.0)
    assert try_acquire("gemini", now=1060.0) == 0.0
    # The next free slot is the one used at 1020.
    assert try_acquire("gemini", now=1060.0) == pytest.approx(20.0)
    assert try_acquire("gemini", now=1079.9) == pytest.approx(0.1)
    assert try_acquire("gemini", now=1080.0) == 0.0


@pytest.mark.django_db
def test_a_refusal_takes_nothing(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 1
    assert try_acquire("anthropic", now=1000.0) == 0.0
    for now in (1001.0, 1010.0, 1059.0):
        assert try_acquire("anthropic", now=now) > 0
    assert try_acquire("anthropic", now=1060.0) == 0.0


@pytest.mark.django_db
def test_providers_are_limited_separately(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 1
    settings.GEMINI_REQUESTS_PER_MINUTE = 2
    assert try_acquire("anthropic", now=1000.0) == 0.0
    assert try_acquire("anthropic", now=1000.0) > 0
    assert [try_acquire("gemini", now=1000.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert try_acquire("gemini", now=1000.0) > 0


@pytest.mark.django_db
def test_raising_and_lowering_the_limit(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 2
    assert [try_acquire("anthropic", now=1000.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(60.0)]
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 4  # two more slots, created on demand
    assert [try_acquire("anthropic", now=1001.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(59.0)]
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 1  # the extra slots are ignored
    assert try_acquire("anthropic", now=1061.0) == 0.0
    assert try_acquire("anthropic", now=1061.0) == pytest.approx(60.0)


@pytest.mark.django_db
def test_lost_slot_rows_are_recreated(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 2
    assert try_acquire("anthropic", now=1000.0) == 0.0
    ProviderRateSlot.objects.all().delete()
    assert [try_acquire("anthropic", now=1000.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(60.0)]


@pytest.mark.django_db
def test_explicit_limit_and_window(settings):
    assert try_acquire("custom", now=10.0, limit=2, window=1.0) == 0.0
    assert try_acquire("custom", now=10.0, limit=2, window=1.0) == 0.0
    assert try_acquire("custom", now=10.25, limit=2, window=1.0) == pytest.approx(0.75)
    assert try_acquire("custom", now=11.0, limit=2, window=1.0) == 0.0


@pytest.mark.django_db
def test_a_granted_request_costs_one_statement(settings, django_assert_max_num_queries):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 5
    try_acquire("anthropic", now=1000.0)  # creates the slots
    with django_assert_max_num_queries(1):
        assert try_acquire("anthropic", now=1000.0) == 0.0
    for _ in range(3):
        try_acquire("anthropic", now=1000.0)
    with django_assert_max_num_queries(2):
        assert try_acquire("anthropic", now=1000.0) > 0


# --- the real clock, threads and processes -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_real_clock_refusal_is_about_a_window(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 2
    assert try_acquire("anthropic") == 0.0 and try_acquire("anthropic") == 0.0
    assert 59.0 < try_acquire("anthropic") <= 60.0


@pytest.mark.django_db(transaction=True)
def test_acquire_waits_for_a_slot_and_says_so(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 2
    settings.PROVIDER_RATE_WINDOW_SECONDS = 2.0  # long enough that a busy box cannot blur the windows
    messages = []

    async def main():
        start = time.monotonic()

        async def one():
            await acquire("anthropic", on_wait=messages.append)
            return time.monotonic() - start

        return sorted(await asyncio.gather(*(one() for _ in range(6))))

    done = asyncio.run(main())
    assert done[1] < 1.5  # the first two at once
    assert done[2] >= 1.95 and 3.95 <= done[4] < 20  # then never more than two per window
    # The four that waited for a slot were told, once each (on a busy box the first two may
    # also queue long enough behind each other's database call to be told).
    assert 4 <= len(messages) <= 6
    assert messages[0] == "Waiting for the anthropic rate limit (2 requests/min)"


@pytest.mark.django_db(transaction=True)
def test_acquire_returns_at_once_without_a_limit(settings):
    settings.GEMINI_REQUESTS_PER_MINUTE = 0
    called = []

    async def main():
        for _ in range(50):
            await acquire("gemini", call=lambda *args: called.append(args))

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 0.5 and not called


@pytest.mark.django_db(transaction=True)
def test_acquire_uses_the_given_call_and_can_be_cancelled(settings):
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 1
    calls = []

    async def call(fn, *args):
        calls.append(fn.__name__)
        return await ratelimit._in_thread(fn, *args)

    async def main():
        await acquire("anthropic", call=call)
        waiting = asyncio.create_task(acquire("anthropic", call=call))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    assert calls[0] == "try_acquire" and len(calls) >= 2


@pytest.mark.django_db(transaction=True)
def test_threads_never_get_more_than_the_limit(settings):
    limit, window, seconds = 4, 0.5, 1.6
    settings.ANTHROPIC_REQUESTS_PER_MINUTE = limit
    settings.PROVIDER_RATE_WINDOW_SECONDS = window
    grants, lock = [], threading.Lock()
    deadline = time.time() + seconds

    def hammer():

        try:
            while time.time() < deadline:
                before = time.time()
                wait = try_acquire("anthropic")
                if wait == 0:
                    with lock:
                        grants.append((before, time.time()))
                else:
                    time.sleep(min(wait, 0.02))
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_never_over(grants, limit, window)
    # ceil(1.6 / 0.5) = 4 windows of 4 at most; and the limiter does not starve.
    assert 3 * limit <= len(grants) <= 4 * limit


HAMMER = textwrap.dedent(
    """
    import asyncio, json, sys, threading, time
    import django
    django.setup()
    from django.conf import settings
    from django.db import connection
    from eval.worker.provider_rate_limit import acquire, try_acquire

    mode, window, start, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    settings.PROVIDER_RATE_WINDOW_SECONDS = window
    time.sleep(max(0.0, start - time.time()))
    deadline = start + seconds
    grants = []

    def hammer():
        try:
            while time.time() < deadline:
                before = time.time()
                wait = try_acquire("anthropic")
                if wait == 0:
                    grants.append((before, time.time()))
                else:
                    time.sleep(min(wait, 0.02))
        finally:
            connection.close()

    async def waiter():
        while time.time() < deadline:
            before = time.time()
            await asyncio.wait_for(acquire("anthropic"), timeout=max(0.01, deadline - before))
            grants.append((before, time.time()))

    async def waiters():
        results = await asyncio.gather(*(waiter() for _ in range(8)), return_exceptions=True)
        assert all(r is None or isinstance(r, TimeoutError) for r in results), results

    if mode == "sync":
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    else:
        asyncio.run(waiters())
    print(json.dumps(grants))
    """
)


def run_processes(mode, *, limit, window, seconds, processes=2):
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
        "ANTHROPIC_REQUESTS_PER_MINUTE": str(limit),
        "PYTHONPATH": str(ROOT),
    }
    start = time.time() + 4.0  # after both have imported Django (even on a busy machine)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, mode, str(window), str(start), str(seconds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    per_process = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        per_process.append([tuple(grant) for grant in json.loads(out)])
    return per_process


@pytest.mark.django_db(transaction=True)
def test_two_processes_hammering_share_the_limit():
    limit, window, seconds = 5, 1.0, 3.5
    per_process = run_processes("sync", limit=limit, window=window, seconds=seconds)
    grants = [grant for grants in per_process for grant in grants]
    assert_never_over(grants, limit, window)
    # At most ceil(3.5 / 1) = 4 windows of 5; both processes got some.
    # Never more than the limit allows; and slots do come back (how many, a busy box decides).
    assert limit < len(grants) <= 4 * limit, len(grants)
    assert all(per_process), [len(g) for g in per_process]


@pytest.mark.django_db(transaction=True)
def test_two_worker_like_processes_waiting_with_acquire_share_the_limit():
    limit, window, seconds = 4, 1.0, 3.5
    per_process = run_processes("async", limit=limit, window=window, seconds=seconds)
    grants = [grant for grants in per_process for grant in grants]
    # Each grant happened between the clock readings before and after its call. No window
    # of `window` seconds may hold more than the limit: grant i and grant i + limit are at
    # least a window apart, which the readings can only contradict if even the latest
    # possible time of the later one is less than a window after the earliest of the first.
    grants_in_order = sorted(grants, key=lambda grant: (grant[0] + grant[1]) / 2)
    for i in range(len(grants_in_order) - limit):
        first, later = grants_in_order[i], grants_in_order[i + limit]
        assert later[1] - first[0] >= window - 0.1, (i, grants_in_order[i : i + limit + 1])
    # Never more than the limit allows; and slots do come back (how many, a busy box decides).
    assert limit < len(grants) <= 4 * limit, len(grants)
    assert all(per_process), [len(g) for g in per_process]


# --- the worker (once eval/worker/executor.py calls the limiter) ---------------------------


@pytest.mark.django_db(transaction=True)
def test_the_worker_waits_for_the_shared_limit(make_task, fast_jobs):

    fast_jobs.ECHO_REQUESTS_PER_MINUTE = 2  # any provider: <NAME>_REQUESTS_PER_MINUTE
    fast_jobs.PROVIDER_RATE_WINDOW_SECONDS = 0.6
    jobs = [create.create_job(task=make_task(), provider="echo", model="echo")[0] for _ in range(6)]
    started = time.monotonic()
    asyncio.run(serve(transport="db", once=True, concurrency=6))
    elapsed = time.monotonic() - started
    assert all(LLMJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED for job in jobs)
    assert elapsed >= 2 * 0.6, f"6 jobs at 2 per 0.6 s took only {elapsed:.2f} s"
