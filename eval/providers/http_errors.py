"""What an HTTP failure from a model API means, the same way for every provider: the
status table, Retry-After parsing and keeping the API key out of error messages.
Imports no SDK; each SDK module maps its own exception classes onto these."""

import email.utils
import time

from eval.providers.errors import ProviderError

# HTTP status -> (error code, what a reviewer reads; {who} is the provider's short label).
# Anything else: 5xx server_error, 4xx bad_request.
STATUS_CODES = {
    400: ("bad_request", "{who} rejected the request"),
    401: ("auth", "{who} rejected the API key"),
    403: ("auth", "{who} denied access with this API key"),
    404: ("not_found", "{who} does not know this model"),
    408: ("timeout", "{who} timed out the request"),
    409: ("bad_request", "{who} reported a conflict"),
    413: ("too_large", "The request is too large for {who}"),
    429: ("rate_limited", "{who} rate limit reached"),
    529: ("overloaded", "{who} is overloaded"),
}
_SERVER_ERROR = ("server_error", "{who} had a server error")
_CLIENT_ERROR = ("bad_request", "{who} refused the request")
# Server-sent detail kept in a message, at most.
DETAIL_LIMIT = 300


def describe_status(status, who):
    """(error code, words) for an HTTP status from the provider called ``who``."""
    code, text = STATUS_CODES.get(status) or (_SERVER_ERROR if status >= 500 else _CLIENT_ERROR)
    return code, text.format(who=who)


def redact(text, secret):
    """``text`` on one line, without ``secret`` and at most DETAIL_LIMIT characters."""
    text = " ".join(str(text or "").split())
    if secret:
        text = text.replace(secret, "[redacted]")
    if len(text) > DETAIL_LIMIT:
        text = text[: DETAIL_LIMIT - 1] + "…"
    return text


def status_error(status, who, *, detail, secret, retry_after=None, in_stream=False):
    """The ProviderError for an HTTP ``status`` (or, ``in_stream``, an error frame sent
    inside a 200 response that stands for that status), with the server's redacted detail."""
    code, text = describe_status(status, who)
    message = f"{text} ({'mid-stream error' if in_stream else f'HTTP {status}'})"
    detail = redact(detail, secret)
    if detail:
        message = f"{message}: {detail}"
    return ProviderError(code, message, retry_after=retry_after, status=None if in_stream else status)


def retry_after_ms(headers):
    """Seconds from a ``retry-after-ms`` header, else None."""
    value = headers.get("retry-after-ms") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value) / 1000)
    except ValueError:
        return None


def retry_after(headers):
    """Seconds from a ``retry-after`` header (seconds or an HTTP date), else None."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_any(headers):
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date), else None."""
    seconds = retry_after_ms(headers)
    return seconds if seconds is not None else retry_after(headers)
