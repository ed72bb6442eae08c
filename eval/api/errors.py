"""One error shape for the whole API: ``{"error": {"code", "message", "field"?}}``.

An exception no layer expected is a JSON 500 ``server_error`` too (logged with
its traceback, never shown to the caller): both front doors, django-ninja's
(eval/api/app.py) and the plain views' (eval/api/auth.py), answer it with
``server_error``."""

import logging

from django.http import JsonResponse

logger = logging.getLogger(__name__)

STATUS = {
    "unauthenticated": 401,
    "csrf_failed": 403,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "idempotency_conflict": 409,
    "invalid": 400,
    "too_large": 413,
    "uri_too_long": 414,  # gunicorn's limit on the request line (coreproject/gunicorn_errors.py)
    "headers_too_large": 431,  # gunicorn's limits on headers
    "expired": 410,
    "confirm_cost": 409,
    "budget_exceeded": 409,
    "rate_limited": 429,
    "too_many_attempts": 429,  # logins refused for a while (eval/login_throttle.py)
    "server_error": 500,
}


class ApiError(Exception):
    def __init__(self, code, message, *, field=None, headers=None, extra=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        # More members of ``error`` for some codes (confirm_cost, budget_exceeded: estimated_cost_usd).
        self.extra = extra or {}

    @property
    def status(self):
        return STATUS[self.code]

    def response(self):
        return error_response(self.code, self.message, field=self.field, headers=self.headers, extra=self.extra)


def error_response(code, message, *, field=None, headers=None, extra=None):
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    body.update(extra or {})
    response = JsonResponse({"error": body}, status=STATUS[code])
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def from_domain(error):
    """A refusal of the job engine or the evaluation services (a JobError, or
    anything with its ``code``, ``message`` and ``field``) in the API's shape:
    a per-user limit's Retry-After, a cost refusal's estimated_cost_usd."""
    return ApiError(
        error.code,
        error.message,
        field=error.field,
        headers=getattr(error, "headers", None),
        extra=getattr(error, "extra", None),
    )


def not_found(what="not found"):
    return ApiError("not_found", what)


def invalid(message, field=None):
    return ApiError("invalid", message, field=field)


def forbidden(message):
    return ApiError("forbidden", message)


def method_not_allowed(method, allowed):
    allowed = ", ".join(sorted(allowed))
    return ApiError(
        "method_not_allowed", f"{method} is not allowed here (allowed: {allowed})", headers={"Allow": allowed}
    )


def server_error(request, exception):
    """The answer to an exception no layer expected: logged with its traceback; the
    caller gets the error shape, not Django's HTML page (nor a traceback in DEBUG)."""
    logger.error("%s %s failed", request.method, request.path, exc_info=exception)
    return error_response("server_error", "internal server error")
