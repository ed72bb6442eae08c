"""The API's front door: authentication (session or Bearer token), then the
method, CSRF (session only), body size and JSON checks, and the mapping of
refusals to the one error shape.

Order matters (DESIGN): an anonymous call gets 401 before any CSRF check; a
logged-in call with a bad CSRF token gets a JSON 403 ``csrf_failed``; calls
with a Bearer token are exempt from CSRF (no browser sends them on its own).
"""

import json
import logging

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from eval.api.errors import ApiError
from eval.jobs.errors import JobError
from eval.models import ApiToken

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering with the reason instead of a page."""

    def _reject(self, request, reason):
        return reason


_csrf = _CsrfCheck(lambda request: None)


def _authenticate(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            user = ApiToken.authenticate(credentials.strip())
            if user is None:
                raise ApiError(
                    "unauthenticated",
                    "invalid or revoked API token",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            request.user = user
            request.auth_method = "token"
            return user
    user = getattr(request, "user", AnonymousUser())
    if not user.is_authenticated:
        raise ApiError(
            "unauthenticated",
            "log in or send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.auth_method = "session"
    return user


def _read_json(request):
    length = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(length)
    except ValueError:
        length = 0
    limit = settings.API_MAX_BODY_BYTES
    if length > limit:
        raise ApiError("too_large", f"the request body is over {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise ApiError("too_large", f"the request body is over {limit} bytes")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("invalid", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError("invalid", "the request body must be a JSON object")
    return data


def endpoint(**handlers):
    """One URL, one handler per method: ``endpoint(GET=view, POST=other)``.

    Handlers get ``request`` (with ``request.user`` set and, for unsafe
    methods, ``request.json``) and the URL's arguments."""
    allowed = sorted(handlers)
    if "GET" in handlers and "HEAD" not in handlers:
        handlers["HEAD"] = handlers["GET"]

    def view(request, *args, **kwargs):
        try:
            _authenticate(request)
            handler = handlers.get(request.method)
            if handler is None:
                raise ApiError(
                    "method_not_allowed",
                    f"{request.method} is not allowed here (allowed: {', '.join(allowed)})",
                    headers={"Allow": ", ".join(allowed)},
                )
            if request.method not in SAFE_METHODS:
                if request.auth_method == "session":
                    reason = _csrf.process_view(request, None, (), {})
                    if reason is not None:
                        raise ApiError("csrf_failed", f"CSRF check failed: {reason}")
                request.json = _read_json(request)
            return handler(request, *args, **kwargs)
        except ApiError as error:
            return error.response()
        except JobError as error:
            return ApiError(error.code, error.message, field=error.field).response()

    view.__name__ = next(iter(handlers.values())).__name__
    return csrf_exempt(view)  # CSRF is checked above, after authentication
