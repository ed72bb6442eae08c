"""Answers each endpoint documents in the OpenAPI schema, errors included,
so the schema lists every status code a caller can get (the suite checks it
against the live server: tests/test_openapi.py)."""

from eval.api.schemas import Error

# Every endpoint: a query string the API refuses (400: eval/api/request_data.py,
# whether the endpoint reads it or not), no or a bad token (401). Unsafe methods
# also: a bad body (400), a session without a good CSRF token (403), a body over
# API_MAX_BODY_BYTES (413).
READ_ERRORS = (400, 401)
WRITE_ERRORS = (400, 401, 403, 413)


def answers(ok, *errors, write=False):
    """``{status: schema}`` for django-ninja's ``response=``: ``ok`` is a dict of
    the success answers; ``errors`` the status codes the endpoint itself adds."""
    codes = set(errors) | set(WRITE_ERRORS if write else READ_ERRORS)
    return {**ok, **dict.fromkeys(sorted(codes), Error)}
