"""The JSON API as one django-ninja ``NinjaAPI``: a router per resource,
pydantic schemas (eval/api/schemas.py), and DESIGN's error shape for every
refusal, whichever layer refuses:

- no or a bad caller: 401 ``unauthenticated`` (security.py, before CSRF);
- a request that does not validate: 400 ``invalid`` with ``field``; a path
  id that does not (a malformed task or job id): 404 ``not_found``;
- a body that is not JSON, nested too deeply, or holding text no database
  can store, and a query string holding such text: 400 ``invalid``
  (eval/api/request_data.py); over API_MAX_BODY_BYTES: 413;
- refusals of the views and of the job engine (ApiError, JobError);
- a method the URL lacks: JSON 405 with ``Allow``; ``/api/``: JSON 404;
- anything unexpected: a JSON 500 ``server_error`` (errors.server_error).

``/api/openapi.json`` (OpenAPI 3.1) and ``/api/docs`` (Swagger UI from
django-ninja's own static files, no CDN) need a login like the rest of the
API: only /healthz and /readyz are public (DESIGN). The docs page sends an
anonymous browser to the login page; the schema answers 401.
"""

import json

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseNotAllowed
from django.http.request import RawPostDataException
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import _csrf_needed as csrf_needed
from ninja.parser import Parser

from eval.api import catalogue, datasets, jobs, judgements, pairs, reviews, run_work, runs, status, tasks, templates
from eval.api.auth import authenticate, bearer_credentials, unauthenticated
from eval.api.errors import ApiError, from_domain, invalid, method_not_allowed, not_found, server_error
from eval.api.request_data import MAX_JSON_DEPTH, parse_json_body
from eval.api.security import CALLERS
from eval.csp import ADMIN_POLICY
from eval.jobs.errors import JobError

DOCS_PATH = "/docs"
# Ninja's names for its own views -> ours (no URL namespace: templates reverse "api-review").
URL_NAMES = {"openapi-json": "api-openapi", "openapi-view": "api-docs"}
# Our code for a status django-ninja refuses with itself (HttpError).
CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}


class Api(NinjaAPI):
    def url_patterns(self):
        """Ninja's URL patterns, one per route, without a namespace, each
        behind ``_json_refusals``."""
        patterns, _, _ = self.urls
        seen, result = set(), []
        for pattern in patterns:
            route = str(pattern.pattern)
            if route in seen:  # a route with several methods comes once per method
                continue
            seen.add(route)
            name = URL_NAMES.get(pattern.name, pattern.name)
            result.append(path(route, _json_refusals(pattern.callback), pattern.default_args, name=name))
        return result

    def get_root_path(self, path_params):
        return reverse("api-root", kwargs=path_params)

    def get_openapi_operation_id(self, operation):
        return operation.view_func.__name__  # list_tasks, create_job...: unique across the API

    def get_content_type(self):
        return "application/json"  # as Django's JsonResponse (JSON is UTF-8 by definition)


class JsonBodies(Parser):
    """Request bodies through the API's one JSON parser (depth, text, numbers)."""

    def parse_body(self, request):
        try:
            raw = request.body
        except RawPostDataException:  # a form body, already parsed as one (by the CSRF check)
            raise invalid("the request body must be JSON (Content-Type: application/json)") from None
        return parse_json_body(raw)


class Docs(Swagger):
    def get_openapi_url(self, api, path_params):
        return reverse("api-openapi", kwargs=path_params)

    def render_page(self, request, api, **kwargs):
        # Always ninja's local template: ninja picks its CDN one unless "ninja" is an
        # installed app, which we avoid (it would load ninja into workers too: settings.py).
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {"swagger_settings": json.dumps(self.settings, indent=1), "api": api, "add_csrf": csrf_needed(api)}
        response = render(request, self.template, context)
        response["Content-Security-Policy"] = ADMIN_POLICY  # Swagger UI sets inline styles; still no inline script
        return response


def _refuse(request, error, *, csrf=True):
    """``error``'s answer, unless the caller is unknown: then 401 comes first."""
    try:
        authenticate(request, csrf=csrf)
    except ApiError as refusal:
        return refusal.response()
    return error.response()


def _json_refusals(view):
    """Around each ninja URL: HEAD is answered as GET (the server drops the
    body); ninja's plain-text 405 and the root's HTML 404 become JSON."""

    def api_view(request, *args, **kwargs):
        method = request.method
        if method == "HEAD":
            request.method = "GET"
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return _refuse(request, not_found("no such API endpoint"))
        except Exception as error:  # raised outside django-ninja's handlers (the docs views)
            return server_error(request, error)
        finally:
            request.method = method  # the server (and Django's test client) drop a HEAD answer's body
        if isinstance(response, HttpResponseNotAllowed):
            allowed = [name.strip() for name in response["Allow"].split(",")]
            return _refuse(request, method_not_allowed(method, allowed), csrf=False)
        return response

    return csrf_exempt(api_view)  # CSRF is checked after authentication (security.py)


def _login_required(view):
    """The schema and the docs page: any caller the API admits."""

    def docs_view(request, *args, **kwargs):
        try:
            authenticate(request)
        except ApiError as refusal:
            if request.path.endswith(DOCS_PATH) and bearer_credentials(request) is None:
                return redirect_to_login(request.get_full_path())
            return refusal.response()
        return view(request, *args, **kwargs)

    return docs_view


api = Api(
    title="LLM eval review console",
    version="1",
    description=(
        "Tasks, LLM jobs (launch, poll, cancel, retry, hide), reviews, judgements, drafts, blind pairs. Errors: "
        '`{"error": {"code", "message", "field"?}}`. Log in at /accounts/login/ '
        "(unsafe methods then need `X-CSRFToken`), or send `Authorization: Bearer <token>` "
        "with an API token from /tokens/. Refused as 400 `invalid`: a body that is not JSON or is nested "
        f"more than {MAX_JSON_DEPTH} levels deep, NaN or Infinity, and text holding NUL or a lone surrogate "
        "(in a body or a query string), an integer beyond 64 bits."
    ),
    auth=CALLERS,
    parser=JsonBodies(),
    docs=Docs(),
    docs_url=DOCS_PATH,
    docs_decorator=_login_required,
)
api.add_router("/tasks", tasks.router)
api.add_router("/tasks", reviews.router)
api.add_router("/tasks", judgements.tasks_router)
api.add_router("/jobs", jobs.router)
api.add_router("/jobs", judgements.jobs_router)
api.add_router("/judgements", judgements.judgements_router)
api.add_router("/pairs", pairs.router)
api.add_router("/models", catalogue.router)
api.add_router("/status", status.router)
api.add_router("/runs", run_work.router)  # first: /runs/compare is not a run id
api.add_router("/runs", runs.router)
api.add_router("/budget", runs.budget_router)
api.add_router("/templates", templates.router)
api.add_router("/results", "eval.api.results.router")
api.add_router("/exports", "eval.api.exports.router")
api.add_router("/datasets", datasets.router)


# --- every refusal in one shape -------------------------------------------------------


@api.exception_handler(ApiError)
def _api_error(request, error):
    return error.response()


@api.exception_handler(JobError)
def _job_error(request, error):
    return from_domain(error).response()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, error):
    return unauthenticated().response()


@api.exception_handler(HttpError)
def _http_error(request, error):
    # Ninja raises a 400 HttpError for a body its parser refused (from our ApiError).
    if isinstance(error.__cause__, ApiError):
        return error.__cause__.response()
    if error.status_code == 400:
        return invalid("the request body is not valid JSON").response()
    return ApiError(CODES.get(error.status_code, "invalid"), str(error)).response()


@api.exception_handler(Exception)
def _unexpected(request, error):
    return server_error(request, error)


@api.exception_handler(Http404)
def _not_found(request, error):
    return not_found().response()


@api.exception_handler(ValidationError)
def _invalid(request, error):
    path_error = next((e for e in error.errors if e["loc"][0] == "path"), None)
    if path_error is not None:
        name = str(path_error["loc"][-1]).removesuffix("_id")
        return not_found(f"no such {name}").response()
    field, message = describe(error.errors[0])
    return invalid(message, field).response()


def describe(error):
    """(field, message) of one pydantic error of a request: the field as a
    dotted path in the body or the query or header name; an unknown key is
    blamed on the object that holds it (``params``), or named at the top."""
    source, *loc = error["loc"]
    parts = [str(part) for part in (loc[1:] if source == "body" else loc)]  # loc[0]: ninja's body argument
    kind = error["type"]
    if kind == "extra_forbidden":
        unknown = parts.pop()
        return (".".join(parts) or unknown), f"unknown field {unknown!r}"
    field = ".".join(parts)
    if not field and source == "body":
        return None, "a JSON object body is required" if kind == "missing" else "the request body must be a JSON object"
    if not field:
        return None, error["msg"]
    if kind == "missing":
        return field, f"{field} is required"
    return field, f"{field}: {error['msg']}"
