"""Refusals of the evaluation services, in the API's error codes."""

from eval.jobs.errors import BudgetExceeded, ConfirmCost, CostRefusal, JobConflict, JobError, MaxCostExceeded

# The cost refusals belong to the job engine (eval/jobs/quota.py): every spend is checked there.
__all__ = [
    "BudgetExceeded",
    "ConfirmCost",
    "Conflict",
    "CostRefusal",
    "Expired",
    "Forbidden",
    "InvalidInput",
    "MaxCostExceeded",
    "NotFound",
]


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
