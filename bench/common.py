"""Helpers shared by the benchmarks (PostgreSQL scratch databases, ports)."""

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
