"""gunicorn's gthread worker, made safe for per-worker listening sockets.

With ``reuse_port`` (deploy/gunicorn.conf.py) every worker listens on a socket
of its own and the kernel spreads new connections over them. Two things that a
shared socket gave for free need restoring:

- A stopping worker (``max_requests``, a reload) stops accepting but keeps its
  socket open until its last kept-alive connection is done, up to
  ``graceful_timeout`` later; connections the kernel routes to it meanwhile
  queue and are reset when the socket finally closes. So it closes its
  listening socket the moment it stops accepting: new connections go to the
  other workers. (Linux's ``net.ipv4.tcp_migrate_req`` moves the few already
  queued; deploy.sh sets it.)
- A second server started on the same port would bind beside the first and
  take half its connections. ``refuse_addresses_in_use`` fails the start instead.
"""

from gunicorn.workers import gthread

from coreproject.supervision.address import in_use


class ThreadWorker(gthread.ThreadWorker):
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        # Not at the connection cap (alive, and accepting again later): only at stop.
        if not enabled and not self.alive and self.cfg.reuse_port:
            for listener in self.sockets:
                listener.close()


def refuse_addresses_in_use(addresses):
    """Fail the start while anything listens at one of ``addresses``."""
    for address in addresses:
        if in_use(address):
            host, port = address
            raise SystemExit(f"{host}:{port} is already in use (another server is listening there)")
