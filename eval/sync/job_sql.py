"""Imported outputs as jobs, in one statement per batch on PostgreSQL.

Django's bulk_create spent about 0.3 ms a job (200,000 imported outputs took
63 s in bench/datasets.py): a model instance per job and some 45 parameters
each, quoted one by one in Python. Here the columns that differ per job go as
seven binary arrays (unnested) and every other column as one constant, its
value what the model's field would save (its default unless given): the
statement follows the model as columns are added."""

import psycopg
from django.db import connection

from eval.models import LLMJob

# The columns that differ per job, with their array types.
VARYING = {
    "id": "uuid",
    "task_id": "bigint",
    "model": "text",
    "run_id": "bigint",
    "prompt_hash": "text",
    "output": "text",
    "output_hash": "text",
}


def _statement(common):
    """(SQL, constant parameters) of the INSERT."""
    quote = connection.ops.quote_name
    columns, values, params = [], [], []
    for field in LLMJob._meta.concrete_fields:
        columns.append(quote(field.column))
        if field.attname in VARYING:
            values.append(f"u.{field.attname}")
            continue
        value = common[field.attname] if field.attname in common else field.get_default()
        values.append(f"CAST(%s AS {field.db_type(connection)})")
        params.append(field.get_db_prep_save(value, connection))
    arrays = ", ".join(f"CAST(%b AS {kind}[])" for kind in VARYING.values())
    sql = (
        f"INSERT INTO {quote(LLMJob._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM unnest({arrays}) AS u({', '.join(VARYING)})"
    )
    return sql, params


def insert_jobs(common, rows):
    """Insert one job per row (a dict of the VARYING columns); ``common`` ({attname:
    value}) holds the other columns that are not their field's default."""
    sql, params = _statement(common)
    arrays = [[row[name] for row in rows] for name in VARYING]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [*params, *arrays])
