"""Site-wide answers: the favicon and the 400 and 403 pages."""

import logging

from django.shortcuts import redirect, render
from django.templatetags.static import static

from eval.pages.common import QueryRefused

# The logger's name is the one operators' filters know (these lived in eval/pages.py).
logger = logging.getLogger("eval.pages")


def favicon(request):
    """/favicon.ico, which browsers and the admin ask for on their own: the site's SVG icon."""
    response = redirect(static("eval/favicon.svg"))
    response["Cache-Control"] = "max-age=86400"
    return response


def permission_denied(request, exception=None):
    """handler403: the site's own page saying why, logged as one INFO line.

    Django would log a refused page at WARNING with the traceback of the
    PermissionDenied; a reviewer opening the dashboard is no incident. A
    response marked as logged is not logged again by Django."""
    message = str(exception or "") or "You do not have access to this page."
    response = render(request, "403.html", {"message": message}, status=403)
    user = getattr(request, "user", None)
    who = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    logger.info("Forbidden: %s for %s", request.path, who)
    response._has_been_logged = True  # read by django.utils.log.log_response
    return response


def bad_request(request, exception=None):
    """handler400: the site's page. A query string a page refused says why, logged
    as one INFO line (Django would log a WARNING); other 400s (a disallowed Host
    header, a malformed upload) keep Django's logging and show no detail."""
    refused = isinstance(exception, QueryRefused)
    response = render(request, "400.html", {"message": str(exception) if refused else ""}, status=400)
    if refused:
        logger.info("Bad request: %s: %s", request.path, exception)
        response._has_been_logged = True  # read by django.utils.log.log_response
    return response
