"""The API's front door: who is calling (Bearer token or session), CSRF for
sessions, the body size limit, and a plain-view front door for the hot path.

Order matters (DESIGN): an anonymous call gets 401 before any CSRF check; a
logged-in call with a bad CSRF token gets a JSON 403 ``csrf_failed``; calls
with a Bearer token are exempt from CSRF (no browser sends them on its own).
The django-ninja endpoints reach these checks through eval/api/security.py;
the poll (eval/api/plain.py) through ``endpoint()`` below, which keeps
django-ninja off the path every open tab hits every 2 s.
"""

import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from eval.api.errors import ApiError, from_domain, method_not_allowed, server_error
from eval.api.request_data import check_query
from eval.jobs.errors import JobError
from eval.models import ApiToken

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOGIN_HINT = "log in or send Authorization: Bearer <token>"


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering with the reason instead of a page."""

    def _reject(self, request, reason):
        return reason


_csrf = _CsrfCheck(lambda request: None)


def bearer_credentials(request):
    """The token after ``Authorization: Bearer``, or None when no Bearer header came."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def token_user(request):
    """The user of the Bearer token sent, None without one; a bad token is
    refused even alongside a valid session."""
    credentials = bearer_credentials(request)
    if credentials is None:
        return None
    user = ApiToken.authenticate(credentials)
    if user is None:
        raise ApiError(
            "unauthenticated",
            "invalid or revoked API token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.user = user
    request.auth_method = "token"
    return user


def session_user(request, *, csrf=True):
    """The logged-in user of the session, or None; unsafe methods need a good
    CSRF token (``csrf=False``: only to refuse the call anyway, e.g. a 405)."""
    user = getattr(request, "user", None) or AnonymousUser()
    if not user.is_authenticated:
        return None
    if csrf and request.method not in SAFE_METHODS:
        # The CSRF check may parse a form body from the stream, after which the
        # body cannot be read (RawPostDataException: a multipart POST was a 500).
        # Read it first (within the size limit); the check then parses the copy.
        check_body_size(request)
        if not is_upload(request):  # an upload's multipart is parsed to temporary files instead
            request.body  # noqa: B018
        reason = _csrf.process_view(request, None, (), {})
        if reason is not None:
            raise ApiError("csrf_failed", f"CSRF check failed: {reason}")
    request.auth_method = "session"
    return user


def unauthenticated():
    return ApiError("unauthenticated", LOGIN_HINT, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request, *, csrf=True):
    """The caller (token first, then session), or ApiError 401."""
    user = token_user(request) or session_user(request, csrf=csrf)
    if user is None:
        raise unauthenticated()
    return user


def check_request(request):
    """What every admitted call passes before its view runs: the body size, then
    the query string's text (eval/api/request_data.py). Bodies are parsed later,
    by the one JSON parser of the API."""
    check_body_size(request)
    check_query(request.GET)


UPLOAD_PATH = re.compile(r"^/api/datasets/[^/]+/imports/?$")


def is_upload(request):
    """A dataset upload (DESIGN: POST /api/datasets/<name>/imports): its body may be
    up to DATASET_MAX_UPLOAD_BYTES and is never read into memory whole."""
    return request.method == "POST" and UPLOAD_PATH.match(request.path_info) is not None


def check_body_size(request):
    """413 for a body over API_MAX_BODY_BYTES (an upload: DATASET_MAX_UPLOAD_BYTES),
    before anything reads or parses it.

    The declared length is the whole truth: Django reads no more than it, and
    a chunked body got one at the WSGI edge (coreproject/chunked_bodies.py).
    Reading the body here would break multipart bodies the CSRF check parsed."""
    if request.method in SAFE_METHODS:
        return
    limit = settings.DATASET_MAX_UPLOAD_BYTES if is_upload(request) else settings.API_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise ApiError("too_large", f"the request body is over {limit} bytes")


def endpoint(**handlers):
    """A plain Django view, one handler per method: ``endpoint(GET=view)``.

    For the hot path (and benchmarks): the same answers as the django-ninja
    endpoints, without building a request model. Handlers get ``request``
    (with ``request.user`` set) and the URL's arguments."""
    allowed = sorted(handlers)
    if "GET" in handlers and "HEAD" not in handlers:
        handlers["HEAD"] = handlers["GET"]

    def view(request, *args, **kwargs):
        try:
            handler = handlers.get(request.method)
            authenticate(request, csrf=handler is not None)
            if handler is None:
                raise method_not_allowed(request.method, allowed)
            check_request(request)
            return handler(request, *args, **kwargs)
        except ApiError as error:
            return error.response()
        except JobError as error:
            return from_domain(error).response()
        except Exception as error:  # a JSON 500, not Django's HTML page
            return server_error(request, error)

    view.__name__ = next(iter(handlers.values())).__name__
    return csrf_exempt(view)  # CSRF is checked in authenticate(), after the caller is known
