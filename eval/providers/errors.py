"""How a model call fails: the error codes providers report and the exception
that carries them. The job engine decides what a code means for the job
(retry or fail); providers only name what happened."""

# Worth another attempt: the same request may pass later.
TRANSIENT_CODES = frozenset(
    {"rate_limited", "overloaded", "server_error", "timeout", "connection", "stream_incomplete"}
)
# Retrying would fail the same way.
PERMANENT_CODES = frozenset({"bad_request", "auth", "not_found", "too_large", "refused"})

# Words a reviewer understands, used in a job's `message` and as a fallback error text.
DESCRIPTIONS = {
    "rate_limited": "Rate limited",
    "overloaded": "Provider overloaded",
    "server_error": "Provider server error",
    "timeout": "Provider timed out",
    "connection": "Could not reach the provider",
    "stream_incomplete": "The response stream ended early",
    "bad_request": "The provider rejected the request",
    "auth": "The provider rejected the API key",
    "not_found": "Model not found at the provider",
    "too_large": "The request is too large for the provider",
    "refused": "The model refused to answer",
}


class ProviderError(Exception):
    """A model call failed. ``transient`` errors are retried by the job engine."""

    def __init__(self, code, message="", *, retry_after=None, status=None):
        self.code = code
        self.transient = code in TRANSIENT_CODES
        self.retry_after = retry_after
        self.status = status
        super().__init__(message or DESCRIPTIONS.get(code, code))

    @property
    def message(self):
        return str(self)
