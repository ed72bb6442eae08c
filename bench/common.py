"""Helpers shared by the benchmarks (PostgreSQL scratch databases, ports, the
throughput table of bench/worker.py and bench/peers.py, py-spy summaries)."""

import os
import socket

PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_url(database):
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def reset_postgres(database):
    """Drop and re-create a scratch database for one benchmark run."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")


def django_on_fresh_postgres(database):
    """A new scratch database, migrated, with Django set up on it (production settings)."""
    import subprocess
    import sys
    from pathlib import Path

    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "coreproject.settings"
    os.environ["DATABASE_URL"] = pg_url(database)
    os.environ["DJANGO_DEBUG"] = "0"
    reset_postgres(database)
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=os.environ, check=True)
    django.setup()


def child_usage(pid):
    """Wait for child ``pid``; (exit code, peak RSS in MB, CPU seconds user+system)."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


THROUGHPUT_HEADER = (
    f"{'workload':13} {'transport/db':14} {'conc':>4} {'jobs':>5} {'jobs/s':>7} {'effic.':>7} "
    f"{'peak RSS':>9} {'CPU µs/tok':>10} {'DB conns':>8} {'upd/job':>8} {'prog/s/job':>10}"
)


def throughput_row(r):
    """One line of the throughput table; a figure a row lacks prints as '-'."""

    def opt(key, fmt):
        return "-" if r.get(key) is None else format(r[key], fmt)

    return (
        f"{r['workload']:13} {r['config']:14} {r['concurrency']:>4} {r['jobs']:>5} {r['jobs_per_s']:>7.1f} "
        f"{r['efficiency']:>7.3f} {r['peak_rss_mb']:>6.0f} MB {opt('cpu_us_per_token', '.1f'):>10} "
        f"{opt('db_connections', 'd'):>8} {opt('updates_per_job', '.2f'):>8} {opt('updates_per_job_second', '.2f'):>10}"
    )


def print_throughput(title, rows):
    print(title)
    print(THROUGHPUT_HEADER)
    print("-" * len(THROUGHPUT_HEADER))
    for row in rows:
        print(throughput_row(row))


def top_functions(path, limit=25):
    """Self and inclusive share of samples per function in py-spy's raw
    (collapsed) output: one ``frame;frame;...;leaf count`` line per stack."""
    from collections import Counter

    own, inclusive, total = Counter(), Counter(), 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count)
            frames = [_short(frame) for frame in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    return total, own.most_common(limit), inclusive.most_common(limit)


def _short(frame):
    """'fn (path/to/module.py:12)' -> 'fn (module.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':')[0].rstrip(')')})" if where else name


if __name__ == "__main__":
    import sys

    total, own, inclusive = top_functions(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
    print(f"{total} samples\nself:")
    for frame, count in own:
        print(f"  {count / total:6.1%}  {frame}")
    print("inclusive:")
    for frame, count in inclusive:
        print(f"  {count / total:6.1%}  {frame}")
