"""Refusals of the evaluation services, in the API's error codes."""

from eval.jobs.errors import JobConflict, JobError


class InvalidInput(JobError):
    code = "invalid"


class Conflict(JobConflict):
    code = "conflict"


class NotFound(JobError):
    code = "not_found"


class Forbidden(JobError):
    code = "forbidden"


class Expired(JobError):
    code = "expired"
