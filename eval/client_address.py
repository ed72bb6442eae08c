"""The address a request came from, behind the trusted reverse proxies.

gunicorn leaves REMOTE_ADDR as the peer (the proxy, behind one); the proxy
names the client in X-Forwarded-For. That header is believed only from a peer
listed in FORWARDED_ALLOW_IPS (the same variable gunicorn reads, so one list
says which proxies are trusted), and read from the right: each trusted proxy
appends the address it got the request from, so the first untrusted address
from the right is the client. Anything further left came from the client and
could be made up (an address it chose to be locked out under, or to escape)."""

import ipaddress

from django.conf import settings


def _ip(address):
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _trusted(address):
    ip = _ip(address)
    return ip is not None and any(ip in network for network in settings.FORWARDED_ALLOW_IPS)


def client_address(request):
    """The client's IP address as a string: REMOTE_ADDR unless a trusted proxy forwarded the request."""
    peer = request.META.get("REMOTE_ADDR", "")
    if not _trusted(peer):
        return peer
    hops = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for address in reversed(hops):
        if not _trusted(address):
            # Not an address (a proxy that adds a port, say): the peer rather than a made-up key.
            return address if _ip(address) is not None else peer
    # Every hop is a trusted proxy (or none was named): the left-most, else the peer itself.
    return hops[0] if hops else peer
