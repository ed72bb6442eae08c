"""Login throttling: django-axes's settings hooks (settings "Login throttling").

LOGIN_FAILURE_LIMIT failed logins for one username, or from one address,
refuse that username or address for LOGIN_COOLOFF_SECONDS after its last
failure, on every form that logs in through ``authenticate()`` (the site's
and the admin's). A refused login is answered 429 with the reason and
Retry-After: a page for a browser, DESIGN's error shape for a JSON client.

django-axes checks the count before the password and records the failure
after it, so parallel attempts all pass the check: a burst of 30 wrong
passwords had all 30 checked under a limit of 5. SerialisedLoginMiddleware
runs the attempts on one username, or from one address, one at a time.
"""

import functools
import math
from datetime import timedelta

from axes.helpers import get_client_parameters, get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Sum
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from eval.api.errors import error_response
from eval.client_address import client_address

REASONS = {
    "username": "Too many failed log-ins for this username.",
    "ip_address": "Too many failed log-ins from your address.",
}


def failure_limit(request, credentials):
    return settings.LOGIN_FAILURE_LIMIT


def cool_off(request=None):
    return timedelta(seconds=settings.LOGIN_COOLOFF_SECONDS)


def _lockouts(request, credentials):
    """(reason, seconds left) for each lockout parameter over the limit."""
    now = timezone.now()
    recent = AccessAttempt.objects.filter(attempt_time__gte=now - cool_off())
    username = get_client_username(request, credentials)
    found = []
    for lookup in get_client_parameters(username, request.axes_ip_address, request.axes_user_agent, request):
        totals = recent.filter(**lookup).aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if (totals["failures"] or 0) >= settings.LOGIN_FAILURE_LIMIT:
            left = (totals["last"] + cool_off() - now).total_seconds()
            found.append((" and ".join(REASONS[key] for key in lookup), max(1, math.ceil(left))))
    return found


def _in_words(seconds):
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429 with the reason and when to try again."""
    lockouts = _lockouts(request, credentials) or [("Too many failed log-ins.", settings.LOGIN_COOLOFF_SECONDS)]
    reason = " ".join(reason for reason, _ in lockouts)
    wait = max(seconds for _, seconds in lockouts)
    message = f"{reason} Try again in {_in_words(wait)}."
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return error_response("too_many_attempts", message, headers={"Retry-After": str(wait)})
    context = {"reason": reason, "wait": _in_words(wait), "retry_at": timezone.now() + timedelta(seconds=wait)}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(wait)
    response["Cache-Control"] = "no-store"
    return response


@functools.cache
def _login_paths():
    return frozenset({reverse("login"), reverse("admin:login")})


def _lock_attempt(username, address):
    """Hold the locks of ``username`` and ``address`` until the transaction ends.

    PostgreSQL: two transaction advisory locks, always the username's first
    (a holder of an address lock never waits, so no cycle). SQLite: the
    transaction began with BEGIN IMMEDIATE (settings), the database's one
    write lock, so attempts run one at a time (logins are rare; a failure
    is checked in a fraction of a second and the locked-out are refused
    without checking the password at all)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in (f"eval.login.username:{username}", f"eval.login.address:{address}"):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


class SerialisedLoginMiddleware:
    """A login POST (the site's or the admin's) holds its username's and
    address's locks while it is checked, counted and recorded."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST" or request.path not in _login_paths():
            return self.get_response(request)
        with transaction.atomic():
            _lock_attempt(request.POST.get("username", ""), client_address(request))
            return self.get_response(request)
