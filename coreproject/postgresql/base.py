"""Django's PostgreSQL backend with a health check that costs no round trip.

``CONN_HEALTH_CHECKS`` makes Django run ``SELECT 1`` before the first query
of every request: on a poll that answers 304 from one query, that was a
fifth of the work. A connection the server has closed (restart, idle
timeout, ``pg_terminate_backend``) has its goodbye waiting on the socket, so
an idle connection with nothing to read is usable; one with something to
read gets Django's real check. A peer that vanished without a word passes
both checks alike and fails its first query, after which Django closes it.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            poller = select.poll()
            poller.register(conn.pgconn.socket, select.POLLIN | select.POLLPRI)
            if not poller.poll(0):
                return True
        except (OSError, ValueError, base.Database.Error):
            pass
        return super().is_usable()
