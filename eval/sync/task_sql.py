"""The sync's two hot statements on the task table, raw SQL."""

import psycopg
from django.db import connection

from eval.models import Task

ANALYZE_MIN_ROWS = 5000
UPSERT_UPDATES = ["title", "prompt", "reference", "messages", "metadata", "content_hash", "prompt_hash", "updated_at"]


class TaskSql:
    """The two hot statements, raw: the ORM's per-object work would cost more
    than everything else a sync does.

    - existing rows of a batch: one SELECT on the (source, external_id) index;
    - new and changed records: INSERT ... ON CONFLICT (source, external_id)
      DO UPDATE of the source's fields (status and created_at of an existing
      row stay). PostgreSQL: one statement per batch, columns passed as
      binary arrays and unnested; SQLite: executemany (its C loop is fast).

    On PostgreSQL these run on a server-side-binding psycopg cursor over
    Django's connection (inside Django's transaction): Django's default
    client-side binding would quote every array element in Python, which
    costs more than the insert itself.
    """

    def __init__(self):
        quote = connection.ops.quote_name
        meta = Task._meta
        self.postgres = connection.vendor == "postgresql"
        col = {f.name: quote(f.column) for f in meta.concrete_fields}
        table = quote(meta.db_table)
        insert_columns = ", ".join(
            col[name]
            for name in (
                "source",
                "external_id",
                "title",
                "prompt",
                "reference",
                "messages",
                "metadata",
                "content_hash",
                "prompt_hash",
                "status",
                "created_at",
                "updated_at",
            )
        )
        on_conflict = (
            f"ON CONFLICT ({col['source']}, {col['external_id']}) DO UPDATE SET "
            + ", ".join(f"{col[name]} = excluded.{col[name]}" for name in UPSERT_UPDATES)
            + f", {col['missing_since']} = NULL"
        )
        select = (
            f"SELECT {col['external_id']}, {col['id']}, {col['content_hash']}, {col['missing_since']} IS NOT NULL "
            f"FROM {table} WHERE {col['source']} = %s AND {col['external_id']}"
        )
        if self.postgres:
            self.select_sql = f"{select} = ANY(CAST(%b AS text[]))"
            self.upsert_sql = (
                f"INSERT INTO {table} ({insert_columns}) "
                "SELECT %s, u.e, u.t, u.p, u.r, CAST(u.c AS jsonb), CAST(u.m AS jsonb), u.h, u.ph, %s, %s, %s "
                "FROM unnest(CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), "
                "CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[])) "
                "AS u(e, t, p, r, c, m, h, ph) " + on_conflict
            )
        else:
            self.select_sql = select + " IN ({})"
            self.upsert_sql = (
                f"INSERT INTO {table} ({insert_columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            )
            self.upsert_sql += on_conflict

    def cursor(self):
        if not self.postgres:
            return connection.cursor()
        connection.ensure_connection()
        return psycopg.Cursor(connection.connection)

    def select_existing(self, source, external_ids):
        if self.postgres:
            return self.select_sql, [source, list(external_ids)]
        return self.select_sql.format(", ".join(["%s"] * len(external_ids))), [source, *external_ids]

    def upsert(self, cursor, source, records, stamp):
        self.upsert_rows(cursor, source, [stored(record) for record in records], stamp)

    def upsert_rows(self, cursor, source, rows, stamp):
        """The upsert of rows already in ``stored()`` form."""
        status = Task.Status.OPEN.value
        if self.postgres:
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(self.upsert_sql, [source, status, stamp, stamp, *columns])
        else:
            cursor.executemany(self.upsert_sql, [(source, *row, status, stamp, stamp) for row in rows])


def stored(record):
    """A record's stored fields, in the statements' column order."""
    return (
        record.external_id,
        record.title,
        record.prompt,
        record.reference,
        record.messages_json,
        record.metadata_json,
        record.content_hash,
        record.prompt_hash,
    )


def refresh_statistics(model, written):
    """PostgreSQL plans the next upload's per-batch SELECTs from the table's
    statistics: after a first import of 100,000 rows into a table it last saw
    empty, it scanned the whole table for every batch (66 s for an unchanged
    re-upload, against 2 s once analyzed; bench/datasets.py). So, as the sync
    does, ANALYZE when this upload wrote a good share of what they knew of."""
    if connection.vendor != "postgresql" or written < ANALYZE_MIN_ROWS:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
        known = max(0, int(row[0])) if row else 0
        if written * 4 >= known:
            cursor.execute(f"ANALYZE {table}")
