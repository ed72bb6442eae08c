"""Refusals of the evaluation services, in the API's error codes."""

from eval.jobs.errors import BudgetExceeded, CostRefusal, JobConflict, JobError

# The budget's refusals belong to the job engine (eval/jobs/quota.py): every spend reserves there.
__all__ = [
    "BudgetExceeded",
    "ConfirmCost",
    "Conflict",
    "CostRefusal",
    "Expired",
    "Forbidden",
    "InvalidInput",
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


class ConfirmCost(CostRefusal):
    code = "confirm_cost"

    def __init__(self, estimated, threshold=None):
        super().__init__(
            f"the estimated cost is ${estimated} (over ${threshold}); send confirm_cost_usd >= the estimate to launch",
            estimated,
        )
