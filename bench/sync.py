#!/usr/bin/env python
"""Benchmark the real ``manage.py sync_tasks`` over 100,000 tasks of ~1 KB prompt.

For each database (SQLite in a temp file, PostgreSQL in a dedicated database
``evalbench_sync`` that is dropped and re-created), it migrates, then runs
the command as a subprocess twice: a first pass (all rows created) and an
unchanged second pass (nothing may be written). Figures per pass: wall time
of the whole command (process start-up included) -> tasks/s, the command's
own counts, rows written measured independently (rows whose updated_at moved;
on PostgreSQL also pg_stat_user_tables inserts+updates; on SQLite whether the
database file changed) and the subprocess's peak RSS (wait4 rusage).

    .venv/bin/python bench/sync.py [--tasks 100000] [--databases sqlite,postgres]

Bars (issue 4): first pass >= 10,000 tasks/s, unchanged pass >= 30,000
tasks/s with zero rows written, peak RSS < 250 MB. Prints a table; exits 0
(it reports figures, it does not judge them), 1 if a command failed.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WORDS = [
    *("the", "model", "answer", "prompt", "review", "token", "stream", "output", "reference", "judge"),
    *("eval", "task", "score", "latency", "context", "system", "user", "assistant", "reasoning", "step"),
    *("result", "check", "value", "error", "retry", "format", "summary", "detail", "example"),
]
BARS = {"first": 10_000, "unchanged": 30_000}
MAX_RSS_MB = 250


def generate(path, count, prompt_bytes, seed=7):
    rng = random.Random(seed)
    with open(path, "w") as out:
        for i in range(count):
            words, size = [], 0
            while size < prompt_bytes:
                word = rng.choice(WORDS)
                words.append(word)
                size += len(word) + 1
            prompt = " ".join(words)[:prompt_bytes]
            record = {
                "id": f"bench-{i:07d}",
                "title": f"Benchmark task {i}",
                "prompt": prompt,
                "reference": "",
                "metadata": {"split": "test" if i % 5 == 0 else "train", "n": i},
            }
            out.write(json.dumps(record) + "\n")


def run(args, env):
    """Run a set-up command (migrate); raise if it fails."""
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def run_measured(args, env):
    """Like run(), but with the child's own peak RSS from wait4 (KB on Linux)."""
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Read the (small) output before reaping, then wait4 for this child's rusage.
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{out}\n{err}")
    return out, wall, usage.ru_maxrss / 1024


COUNT_RE = re.compile(r"(created|updated|unchanged|invalid|missing|restored)=(\d+)")


def parse_counts(output):
    return {key: int(value) for key, value in COUNT_RE.findall(output)}


class SQLiteTarget:
    label = "SQLite"

    def __init__(self, workdir):
        self.path = Path(workdir) / "bench.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def prepare(self):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def query(self, sql):
        import sqlite3

        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql).fetchone()

    def snapshot(self):
        stat = self.path.stat()
        stamp = self.query("SELECT max(updated_at) FROM eval_task")[0]
        return {"rows": stamp, "file": (stat.st_size, stat.st_mtime_ns)}

    def written(self, before):
        stamp = before["rows"]
        moved = self.query(f"SELECT count(*) FROM eval_task WHERE updated_at > '{stamp}'")[0] if stamp else None
        changed = (self.path.stat().st_size, self.path.stat().st_mtime_ns) != before["file"]
        return moved, f"db file {'changed' if changed else 'unchanged'}"


class PostgresTarget:
    label = "PostgreSQL"

    def __init__(self, server, name):
        self.server = server.rstrip("/")
        self.name = name
        self.url = f"{self.server}/{name}"

    def prepare(self):
        import psycopg

        with psycopg.connect(f"{self.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def query(self, sql):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql).fetchone()

    def _tuples(self):
        time.sleep(0.5)  # a finished backend's counters reach the stats system at its exit
        return self.query(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname = 'eval_task'"
        )[0]

    def snapshot(self):
        return {"rows": self.query("SELECT max(updated_at) FROM eval_task")[0], "tuples": self._tuples()}

    def written(self, before):
        stamp = before["rows"]
        moved = (
            self.query(f"SELECT count(*) FROM eval_task WHERE updated_at > '{stamp.isoformat()}'")[0] if stamp else None
        )
        return moved, f"pg_stat tuples written {self._tuples() - before['tuples']}"


def bench(target, source, tasks):
    env = {**os.environ, "DATABASE_URL": target.url, "DJANGO_DEBUG": "0", "TASK_SOURCE_NAME": ""}
    target.prepare()
    run([PYTHON, "manage.py", "migrate", "-v0"], env)
    rows = []
    for label in ("first", "unchanged"):
        before = target.snapshot() if label == "unchanged" else None
        out, wall, rss = run_measured([PYTHON, "manage.py", "sync_tasks", "--source", str(source)], env)
        counts = parse_counts(out)
        if before is None:
            moved = target.query("SELECT count(*) FROM eval_task")[0]
            note = "rows in table after pass"
        else:
            moved, note = target.written(before)
        records = sum(counts.get(key, 0) for key in ("created", "updated", "unchanged", "invalid"))
        rate = tasks / wall
        written = counts.get("created", 0) + counts.get("updated", 0) + counts.get("missing", 0)
        ok = rate >= BARS[label] and rss < MAX_RSS_MB and (label == "first" or (written == 0 and moved == 0))
        rows.append(
            {
                "db": target.label,
                "pass": label,
                "records": records,
                "created": counts.get("created", 0),
                "updated": counts.get("updated", 0),
                "unchanged": counts.get("unchanged", 0),
                "written": written,
                "moved": moved,
                "note": note,
                "wall": wall,
                "rate": rate,
                "rss": rss,
                "ok": ok,
            }
        )
    return rows


def print_table(rows, tasks, prompt_bytes, file_mb):
    print(f"\nsync_tasks benchmark: {tasks:,} tasks, ~{prompt_bytes} B prompt each, JSONL {file_mb:.0f} MB")
    header = (
        f"{'database':<11} {'pass':<10} {'created':>8} {'updated':>8} {'unchanged':>9} {'written':>8} "
        f"{'wall s':>7} {'tasks/s':>9} {'peak RSS':>9}  {'bar':<4} independent check"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        if row["pass"] == "first":
            moved = f"{row['moved']:,} {row['note']}"
        else:
            moved = f"updated_at moved on {row['moved']} rows; {row['note']}"
        print(
            f"{row['db']:<11} {row['pass']:<10} {row['created']:>8,} {row['updated']:>8,} {row['unchanged']:>9,} "
            f"{row['written']:>8,} {row['wall']:>7.2f} {row['rate']:>9,.0f} {row['rss']:>6.0f} MB  "
            f"{'ok' if row['ok'] else 'MISS':<4} {moved}"
        )
    print(
        f"bars: first >= {BARS['first']:,}/s, unchanged >= {BARS['unchanged']:,}/s with 0 rows written, "
        f"peak RSS < {MAX_RSS_MB} MB (wall time includes process start-up)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--prompt-bytes", type=int, default=1000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--postgres-db", default="evalbench_sync")
    args = parser.parse_args()
    wanted = [name.strip() for name in args.databases.split(",") if name.strip()]

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as workdir:
        source = Path(workdir) / "bench-tasks.jsonl"
        started = time.monotonic()
        generate(source, args.tasks, args.prompt_bytes)
        file_mb = source.stat().st_size / 1e6
        print(f"generated {args.tasks:,} tasks ({file_mb:.0f} MB) in {time.monotonic() - started:.1f} s")
        rows = []
        for name in wanted:
            if name == "sqlite":
                target = SQLiteTarget(workdir)
            elif name == "postgres":
                target = PostgresTarget(args.postgres, args.postgres_db)
            else:
                parser.error(f"unknown database {name!r} (sqlite, postgres)")
            print(f"running on {target.label} ...", flush=True)
            try:
                rows.extend(bench(target, source, args.tasks))
            except Exception as error:
                print(f"{target.label}: FAILED: {error}")
                return 1
        print_table(rows, args.tasks, args.prompt_bytes, file_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
