"""Django's PostgreSQL backend with a health check that costs no round trip.

``CONN_HEALTH_CHECKS`` makes Django run ``SELECT 1`` before the first query
of every request: one round trip of four on an unchanged poll. A connection
the server has closed (restart, idle timeout, ``pg_terminate_backend``) has
its goodbye waiting on the socket, so an idle connection with nothing to
read is usable; one with something to read gets Django's real check. A peer
that vanished without closing the connection is not seen here: the first
query fails and Django closes the connection after that request (where
``SELECT 1`` would have waited on the dead socket).
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
