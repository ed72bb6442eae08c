"""The two ways in, as django-ninja auth classes (and so as the OpenAPI
``securitySchemes``): a Bearer API token, or the Django session cookie.

Both delegate to eval/api/auth.py, so the ninja endpoints and the plain
poll view admit exactly the same callers. Not ninja's own ``django_auth``:
it checks CSRF before it looks at the user, so an anonymous POST would get a
403 where DESIGN wants a 401.
"""

from django.conf import settings
from ninja.security import APIKeyCookie, HttpBearer

from eval.api.auth import check_request, session_user, token_user


def _admitted(request, user):
    if user is not None:
        check_request(request)
    return user


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` with a per-user API token (page /tokens/). No CSRF token needed."""

    def __call__(self, request):
        return _admitted(request, token_user(request))

    def authenticate(self, request, token):  # required by HttpBearer; __call__ above does the work
        return token_user(request)


class SessionCookie(APIKeyCookie):
    """A logged-in browser session (``/accounts/login/``). Unsafe methods also
    need the ``X-CSRFToken`` header (value of the ``csrftoken`` cookie)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self):
        super().__init__(csrf=True)  # tells the docs page to send X-CSRFToken; checked in session_user()

    def __call__(self, request):
        return _admitted(request, session_user(request))

    def authenticate(self, request, key):  # required by APIKeyCookie; __call__ above does the work
        return session_user(request)


CALLERS = [BearerToken(), SessionCookie()]
