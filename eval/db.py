"""A cursor for the few hot statements the project writes in SQL.

Django binds parameters on the client and never prepares statements (that
keeps transaction-pooling PgBouncer working). An unchanged poll, sent by
every open tab every 2 s, runs three statements: the session, the user and
the poll state; PostgreSQL spent longer planning the last one's joins than
running them. On PostgreSQL they go through a server-binding cursor that
prepares them: planned once per connection. The cursor is wrapped like any
Django cursor (error translation, execute wrappers).
"""

from contextlib import contextmanager

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

_cursor_class = None


def _preparing_cursor_class():
    global _cursor_class
    if _cursor_class is None:

        class PreparingCursor(psycopg.Cursor):
            def execute(self, query, params=None, *, prepare=True, binary=None):
                return super().execute(query, params, prepare=prepare, binary=binary)

        _cursor_class = PreparingCursor
    return _cursor_class


def prepares_statements(connection=None):
    connection = connection or connections[DEFAULT_DB_ALIAS]
    options = connection.settings_dict["OPTIONS"]
    return connection.vendor == "postgresql" and options.get("prepare_threshold") is not None


@contextmanager
def prepared_cursor():
    """``connection.cursor()``, but statements are prepared on PostgreSQL
    (when ``OPTIONS["prepare_threshold"]`` is set, as settings.py does)."""
    connection = connections[DEFAULT_DB_ALIAS]  # once: each ``django.db.connection.x`` is a lookup
    # With query logging on (DEBUG, tests counting queries) Django could not
    # show a prepared statement's SQL: run it as a plain one then.
    if not prepares_statements(connection) or connection.queries_logged:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _preparing_cursor_class()(connection.connection)
    with connection.make_cursor(raw) as cursor:
        yield cursor
