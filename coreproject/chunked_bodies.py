"""Request bodies sent chunked (no Content-Length), given one at the WSGI edge.

Django reads a body only up to its Content-Length, so a chunked body (which
gunicorn decodes in ``wsgi.input``) read as empty: a JSON call answered
"a JSON object body is required". Here such a body is copied, while counting,
into a spooled file (memory up to SPOOL_BYTES, then a temporary file: an
upload never sits in memory whole) and handed on with its length; over the
largest body any endpoint takes, the answer is the API's 413 and the rest is
not read.
"""

import json
from tempfile import SpooledTemporaryFile

from django.conf import settings

SPOOL_BYTES = 1024 * 1024
READ_BYTES = 64 * 1024


def largest_body():
    return max(settings.API_MAX_BODY_BYTES, settings.DATASET_MAX_UPLOAD_BYTES)


def _too_large(start_response, limit):
    body = json.dumps({"error": {"code": "too_large", "message": f"the request body is over {limit} bytes"}})
    start_response(
        "413 Request Entity Too Large",
        [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Connection", "close")],
    )
    return [body.encode()]


class ChunkedBodies:
    """WSGI middleware around the Django application."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked or environ.get("CONTENT_LENGTH"):
            return self.application(environ, start_response)
        limit = largest_body()
        body = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  (the request reads it after this call)
        size = 0
        stream = environ["wsgi.input"]
        while chunk := stream.read(READ_BYTES):
            size += len(chunk)
            if size > limit:
                body.close()
                return _too_large(start_response, limit)
            body.write(chunk)
        body.seek(0)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = body, str(size)
        return self.application(environ, start_response)
