"""The database session store, loading a session with one prepared SQL
statement.

Every API call and every poll (one per open tab per 2 s) loads the session;
building the ORM query cost more than running it. Everything else (saving,
expiry, key rotation, ``clearsessions``) is Django's own db store.
"""

from django.contrib.sessions.backends import db
from django.db import connection
from django.utils import timezone

from eval.db import prepared_cursor


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        table = connection.ops.quote_name(self.model._meta.db_table)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with prepared_cursor() as cursor:
            cursor.execute(
                f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s",
                [self.session_key, now],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return self.model(session_key=self.session_key, session_data=row[0])
