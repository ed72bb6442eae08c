"""``GET /metrics``: a staff session or ``Authorization: Bearer <METRICS_TOKEN>``
(compared in constant time). Anonymous without a token: 401; anything else
refused (wrong token, logged-in non-staff): 403. Errors in DESIGN's shape,
``{"error": {"code", "message"}}``, built here: this package sits below the API."""

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from eval import access
from eval.metrics.collector import render


def error(status, code, message, **headers):
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name] = value
    return response


def bearer(request):
    """The Bearer credentials sent, or None when no Authorization header came."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def token_ok(sent):
    expected = settings.METRICS_TOKEN
    return bool(sent and expected) and hmac.compare_digest(sent.encode(), expected.encode())


def refusal(request, sent):
    """The error response for a request that may not read the metrics, or None when it may."""
    user = getattr(request, "user", None)
    logged_in = bool(user is not None and user.is_authenticated)
    if token_ok(sent) or access.is_staff(user):
        return None
    if sent is None and not logged_in:
        message = "log in as staff or send Authorization: Bearer <METRICS_TOKEN>"
        return error(401, "unauthenticated", message, **{"WWW-Authenticate": "Bearer"})
    return error(403, "forbidden", "metrics need a staff login or the metrics token")


def metrics_view(request):
    if request.method not in ("GET", "HEAD"):
        return error(405, "method_not_allowed", f"{request.method} is not allowed here", Allow="GET")
    refused = refusal(request, bearer(request))
    if refused is not None:
        return refused
    response = HttpResponse(render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
