"""Job error codes (DESIGN "HTTP API") and the exceptions that carry them."""

TRANSIENT_CODES = {"rate_limited", "overloaded", "server_error", "timeout", "connection", "stream_incomplete"}
PERMANENT_CODES = {"bad_request", "auth", "not_found", "too_large", "refused", "timed_out", "lease_expired"}

# Words a reviewer understands, used in `message` and as a fallback error text.
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
    "timed_out": "The job ran past its time limit",
    "lease_expired": "The worker running this job stopped answering",
}


class ProviderError(Exception):
    """A model call failed. ``transient`` errors are retried by the lifecycle."""

    def __init__(self, code, message="", *, retry_after=None, status=None):
        self.code = code
        self.transient = code in TRANSIENT_CODES
        self.retry_after = retry_after
        self.status = status
        super().__init__(message or DESCRIPTIONS.get(code, code))

    @property
    def message(self):
        return str(self)


class JobError(Exception):
    """Base for refusals raised by the lifecycle to its callers."""

    code = "invalid"

    def __init__(self, message, *, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidJob(JobError):
    code = "invalid"


class JobConflict(JobError):
    code = "conflict"


class IdempotencyConflict(JobError):
    code = "idempotency_conflict"
