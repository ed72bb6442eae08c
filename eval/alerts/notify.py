"""Sending one alert notice: by email (Django's email backend, to ALERT_EMAILS)
or to ALERT_WEBHOOK_URL (Slack-compatible: a JSON ``{"text": ...}`` POST).

A send never holds the daemon longer than ALERT_SEND_TIMEOUT_SECONDS: the
socket timeout alone does not bound a call (a server that answers a byte at a
time never trips it), so the call runs in a thread that is waited for that
long and then abandoned (it touches no database; its socket timeout ends it).
A failure comes back as a reason in words, for the log and the notice row.

The webhook URL is a credential (Slack's carries its secret in the path): it
is never logged or stored. Lines name the host only, and every reason is
scrubbed of the URL before it leaves this module.
"""

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import get_connection, send_mail

from eval.models import AlertNotice

log = logging.getLogger(__name__)

Channel = AlertNotice.Channel
SUBJECT_CHARS = 150


def channels():
    """The channels configured now; a notice is owed to each."""
    configured = []
    if settings.ALERT_EMAILS:
        configured.append(Channel.EMAIL)
    if settings.ALERT_WEBHOOK_URL:
        configured.append(Channel.WEBHOOK)
    return configured


def where(channel):
    """A channel as a log line may name it: never the webhook's URL."""
    if channel == Channel.WEBHOOK:
        return f"webhook ({webhook_host() or 'no host'})"
    return f"email to {len(settings.ALERT_EMAILS)} address(es)"


def webhook_host():
    try:
        return urlsplit(settings.ALERT_WEBHOOK_URL).hostname or ""
    except ValueError:
        return ""


def send(notice, timeout, should_stop=None):
    """Send ``notice`` on its channel; "" when sent, else why not (safe to log).
    ``should_stop()`` true (the daemon got SIGTERM) abandons the wait at once."""
    senders = {Channel.EMAIL: _email, Channel.WEBHOOK: _webhook}
    sender = senders.get(notice.channel)
    if sender is None:
        return f"unknown channel {notice.channel!r}"
    if notice.channel == Channel.WEBHOOK and not settings.ALERT_WEBHOOK_URL:
        return "ALERT_WEBHOOK_URL is not set"
    if notice.channel == Channel.EMAIL and not settings.ALERT_EMAILS:
        return "ALERT_EMAILS is not set"
    return scrub(bounded(lambda: sender(notice.text, timeout), timeout, should_stop))


STOP_CHECK_SECONDS = 0.2


def bounded(call, timeout, should_stop=None):
    """Run ``call`` for at most ``timeout`` seconds, or until ``should_stop()``; "" when it
    returned, else why not. A call given up on is left to its daemon thread (it touches
    no database) and the notice goes again on a later pass."""
    outcome = {}

    def run():
        try:
            call()
            outcome["error"] = ""
        except Exception as error:
            outcome["error"] = describe(error)

    thread = threading.Thread(target=run, name="alert-send", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        if should_stop is not None and should_stop():
            return "given up: the daemon is stopping"
        thread.join(min(STOP_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
    if thread.is_alive() or "error" not in outcome:
        return f"no answer within {timeout:g} s"
    return outcome["error"]


def describe(error):
    """An exception in a few words: the HTTP status, a timeout, the socket error."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    return f"{type(error).__name__}: {error}"[:300]


def scrub(text):
    url = settings.ALERT_WEBHOOK_URL
    return text.replace(url, "webhook") if url and text else text


def _email(text, timeout):
    subject = " ".join(f"[eval alert] {text}".split())
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1] + "…"
    body = f"{text}\n\nThe staff dashboard (/dashboard/) lists the active alerts.\n"
    connection = get_connection(timeout=timeout)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, settings.ALERT_EMAILS, connection=connection)


def _webhook(text, timeout):
    request = urllib.request.Request(
        settings.ALERT_WEBHOOK_URL,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read(10_000)
