"""Django's ModelBackend, loading the request's user with one prepared SQL
statement on PostgreSQL (every request does it; the ORM query cost more to
build than to run). Permissions, login and everything else are Django's."""

import functools

from django.contrib.auth import backends, get_user_model
from django.db import DEFAULT_DB_ALIAS, connections

from eval.db import prepared_cursor, prepares_statements


@functools.cache
def _user_query(model):
    fields = model._meta.concrete_fields
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    sql = f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {quote(model._meta.pk.column)} = %s"
    return sql, [field.attname for field in fields]


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id):
        if not prepares_statements():
            return super().get_user(user_id)
        model = get_user_model()
        sql, attnames = _user_query(model)
        with prepared_cursor() as cursor:
            cursor.execute(sql, [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        user = model.from_db(DEFAULT_DB_ALIAS, attnames, row)
        return user if self.user_can_authenticate(user) else None
