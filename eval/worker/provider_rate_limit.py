"""A provider-wide rate limit shared by every worker process on every machine.

``<PROVIDER>_REQUESTS_PER_MINUTE`` (settings; 0 = unlimited) caps the requests
sent to a provider in ANY 60-second window, so a bulk run of thousands of jobs
backs off before the provider answers 429.

How: a sliding-window log kept in R rows (``ProviderRateSlot``, R = the limit).
Each slot remembers when it last let a request through; a request is granted
by taking a slot last used at least a window ago, in ONE conditional UPDATE
(PostgreSQL: the slot is picked ``FOR UPDATE SKIP LOCKED``, so racing
processes never wait on each other nor take the same slot; SQLite: one
statement is one write transaction). By pigeonhole, R+1 grants always include
two through the same slot, at least a window apart: the limit can never be
exceeded, whatever the number of processes. A burst of up to R goes through
at once, which also makes it at least as strict as a token bucket of R per
minute (Anthropic) or a fixed per-minute window. When no slot is free, a
second statement reads when the oldest one frees up.

Times are epoch seconds from the database's clock on PostgreSQL (workers on
several VMs need not agree on the time) and this host's clock on SQLite.
The slots are created on first use and re-created if missing; when the limit
is lowered the extra slots are ignored.

Cost: one statement per granted request, two when the caller must wait.
"""

import asyncio
import logging
import random
import time
import weakref

from django.conf import settings
from django.db import connection

from eval.models import ProviderRateSlot

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
# acquire() sleeps at most this long between two tries ("small slices").
MAX_SLICE_SECONDS = 1.0
# Spread the wake-ups of processes waiting for the same slot.
JITTER_SECONDS = 0.02
# Returned when a slot looked free but was taken by a racing process.
RETRY_SOON_SECONDS = 0.005
# on_wait is called when a request waits longer than this for its turn.
TELL_AFTER_SECONDS = 0.1


def limit_for(provider_name):
    """Requests per minute allowed for ``provider_name`` (0 = unlimited)."""
    if not provider_name or not provider_name.replace("_", "").isalnum():
        return 0
    return int(getattr(settings, f"{provider_name.upper()}_REQUESTS_PER_MINUTE", 0) or 0)


def window_seconds():
    # Tests shorten the window (a test-only knob, not a documented setting).
    return float(getattr(settings, "PROVIDER_RATE_WINDOW_SECONDS", WINDOW_SECONDS))


def try_acquire(provider_name, now=None, *, limit=None, window=None):
    """Take a request slot for ``provider_name`` if one is free.

    Returns 0 when granted, else the seconds until the next slot frees up
    (nothing is taken then). ``now`` (epoch seconds) overrides the clock;
    ``limit`` and ``window`` override the settings (tests)."""
    limit = limit_for(provider_name) if limit is None else int(limit)
    if limit <= 0:
        return 0.0
    window = window_seconds() if window is None else float(window)
    postgres = connection.vendor == "postgresql"
    if now is None and not postgres:
        now = time.time()
    for _ in range(3):
        if _grant(provider_name, limit, window, now, postgres):
            return 0.0
        count, oldest, current = _state(provider_name, limit, now, postgres)
        if count < limit:  # first use, a raised limit, or the rows were deleted
            _create_slots(provider_name, limit)
            continue
        wait = oldest + window - current
        if wait > 0:
            return wait
        # A free slot was taken (or skipped as locked) by a racing process: try again.
    return RETRY_SOON_SECONDS


def _table():
    return connection.ops.quote_name(ProviderRateSlot._meta.db_table)


def _clock(postgres):
    """SQL for "now" in epoch seconds: the parameter if given, else the database clock."""
    if postgres:
        return "COALESCE(%s::float8, EXTRACT(EPOCH FROM statement_timestamp())::float8)"
    return "%s"


def _grant(provider_name, limit, window, now, postgres):
    table = _table()
    if postgres:
        sql = f"""
            WITH clock AS (SELECT {_clock(True)} AS now),
            picked AS MATERIALIZED (
                SELECT s.id FROM {table} s, clock
                WHERE s.provider = %s AND s.slot < %s AND s.granted_at <= clock.now - %s
                ORDER BY s.granted_at LIMIT 1
                FOR UPDATE OF s SKIP LOCKED
            )
            UPDATE {table} SET granted_at = clock.now FROM picked, clock
            WHERE {table}.id = picked.id AND {table}.granted_at <= clock.now - %s
            RETURNING {table}.id
        """
        params = [now, provider_name, limit, window, window]
    else:
        sql = f"""
            UPDATE {table} SET granted_at = %s
            WHERE id = (
                SELECT id FROM {table}
                WHERE provider = %s AND slot < %s AND granted_at <= %s
                ORDER BY granted_at LIMIT 1
            ) AND granted_at <= %s
            RETURNING id
        """
        params = [now, provider_name, limit, now - window, now - window]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.fetchall())


def _state(provider_name, limit, now, postgres):
    """(slots, oldest granted_at, now) for the provider's first ``limit`` slots."""
    sql = f"SELECT COUNT(*), MIN(granted_at), {_clock(postgres)} FROM {_table()} WHERE provider = %s AND slot < %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, provider_name, limit])
        count, oldest, current = cursor.fetchone()
    return count, oldest or 0.0, float(current)


def _create_slots(provider_name, limit):
    ProviderRateSlot.objects.bulk_create(
        [ProviderRateSlot(provider=provider_name, slot=slot) for slot in range(limit)],
        ignore_conflicts=True,
        batch_size=1000,
    )


# --- async waiting (the worker) -------------------------------------------------

# One waiter per provider per event loop polls the database; the others queue
# behind it in order (asyncio.Lock is FIFO).
_locks = weakref.WeakKeyDictionary()


def _local_lock(provider_name):
    locks = _locks.setdefault(asyncio.get_running_loop(), {})
    if provider_name not in locks:
        locks[provider_name] = asyncio.Lock()
    return locks[provider_name]


async def _in_thread(fn, *args):
    """The default ``call``: a thread with its own short-lived connection
    (callers that wait often, like the worker, pass a pooled ``call``)."""

    def run():
        try:
            return fn(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


async def acquire(provider_name, *, call=None, on_wait=None):
    """Wait until a request slot for ``provider_name`` is free and take it.

    Returns at once when the provider has no limit. ``call(fn, *args)`` runs
    the synchronous database work (the worker passes its ``Database.call``;
    default: a thread). ``on_wait(text)`` is called once if the request has
    to wait, with words for the job's message. Cancelling while waiting takes
    no slot (unless the cancel lands while a slot is being granted)."""
    limit = limit_for(provider_name)
    if limit <= 0:
        return
    run = call or _in_thread
    lock = _local_lock(provider_name)
    told = False

    def tell():
        nonlocal told
        if on_wait is not None and not told:
            told = True
            on_wait(f"Waiting for the {provider_name} rate limit ({limit} requests/min)")

    # Queued behind other requests of this process for more than a moment: say so.
    timer = asyncio.get_running_loop().call_later(TELL_AFTER_SECONDS, tell) if on_wait else None
    try:
        async with lock:
            while True:
                wait = await run(try_acquire, provider_name)
                if wait <= 0:
                    return
                tell()
                await asyncio.sleep(min(wait, MAX_SLICE_SECONDS) + random.uniform(0, JITTER_SECONDS))
    finally:
        if timer is not None:
            timer.cancel()
