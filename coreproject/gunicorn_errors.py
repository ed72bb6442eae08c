"""gunicorn's own error answers in the API's error shape.

gunicorn refuses some requests before Django sees them (a request line over
``limit_request_line``, a control byte in a header, a bad chunk size) and
answers with an HTML page. API clients expect DESIGN's JSON shape on every
answer, so the worker's writer of those answers is replaced by one writing
``{"error": {"code", "message"}}`` with the same status. gunicorn calls it
as ``util.write_error(sock, status, reason, message)`` from
``Worker.handle_error``; tests/test_gunicorn_errors.py fails if that stops.
"""

import json

from gunicorn import util

# gunicorn's statuses, the API code each one becomes and that code's status
# (eval/api/errors.py STATUS: a code always comes with the same status).
CODES = {
    400: ("invalid", 400),
    403: ("forbidden", 403),
    414: ("uri_too_long", 414),
    417: ("invalid", 400),
    431: ("headers_too_large", 431),
    501: ("invalid", 400),  # an unsupported transfer coding: the client's to fix
}
REASONS = {400: "Bad Request", 403: "Forbidden", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
MESSAGES = {
    414: "the request line is too long (at most {limit} bytes: send long lists in a body, or fewer items)",
    431: "the request's headers are too large",
}


def install(limit_request_line):
    def write_json_error(sock, status_int, reason, mesg):
        code, status = CODES.get(status_int, ("server_error", 500))
        message = MESSAGES.get(status_int, "{mesg}").format(limit=limit_request_line, mesg=mesg or reason)
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, reason)}\r\n"
            "Connection: close\r\nContent-Type: application/json\r\n"
            f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin-1") + body)

    util.write_error = write_json_error
