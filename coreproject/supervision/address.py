"""The web's address, from GUNICORN_BIND as deploy/gunicorn.conf.py reads it:
checked before gunicorn starts (a taken port made it crash-loop, nameless) and
announced as a URL once the web answers HTTP there."""

import errno
import http.client
import os
import re
import socket

from gunicorn.util import parse_address

VARIABLE = "GUNICORN_BIND"
DEFAULT = "127.0.0.1:8000"  # deploy/gunicorn.conf.py's default
# gunicorn's "Connection in use: ('127.0.0.1', 8000)" (it retries 5 times, then
# exits) and coreproject.gunicorn_worker's "... is already in use" (no retry).
IN_USE_LINE = re.compile(r"Connection in use|already in use")


def configured():
    """GUNICORN_BIND as written, and as gunicorn parses it: (host, port), or a
    Unix socket path / file descriptor, which have no URL and are not checked."""
    bind = os.environ.get(VARIABLE) or DEFAULT
    try:
        return bind, parse_address(bind)
    except RuntimeError as error:  # gunicorn's word for a bad port or descriptor
        raise SystemExit(f"run_services: {VARIABLE}={bind} is not an address to serve on: {error}") from None


def _tcp(address):
    return address if isinstance(address, tuple) else None


def in_use(address):
    """Does something listen at ``address`` already? A bind without
    SO_REUSEPORT fails while anything listens there, SO_REUSEPORT or not."""
    if not _tcp(address):
        return False
    host, _ = address
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            # Anything else (a host not on this machine ...) is for gunicorn to report.
    return False


def in_use_message(bind, address):
    where = f"{address[0]}:{address[1]}" if _tcp(address) else bind
    return (
        f"{where} is already in use: another server listens there. "
        f"{VARIABLE} sets the address the web serves on (now {VARIABLE}={bind}): "
        f"stop the other server, or choose a free port, e.g. {VARIABLE}=127.0.0.1:8001."
    )


def _reachable_host(host):
    """Where a browser on this machine reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def url(address):
    if not _tcp(address):
        return None
    host = _reachable_host(address[0])
    return f"http://{f'[{host}]' if ':' in host else host}:{address[1]}/"


def answers(address, timeout=2.0):
    """Does the web answer HTTP at ``address`` (GET /healthz, any status)? A TCP
    connection alone is not enough: gunicorn's arbiter listens before its worker has
    booted, and the kernel accepts connections for it that nobody answers yet."""
    if not _tcp(address):
        return False
    connection = http.client.HTTPConnection(_reachable_host(address[0]), address[1], timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
