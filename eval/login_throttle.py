"""Login throttling: django-axes's settings hooks (settings "Login throttling").

LOGIN_FAILURE_LIMIT failed logins for one username, or from one address,
refuse that username or address for LOGIN_COOLOFF_SECONDS after its last
failure, on every form that logs in through ``authenticate()`` (the site's
and the admin's). A refused login is answered 429 with the reason and
Retry-After: a page for a browser, DESIGN's error shape for a JSON client.
"""

import math
from datetime import timedelta

from axes.helpers import get_client_parameters, get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone

from eval.api.errors import error_response

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
