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


class CostRefusal(JobConflict):
    """A launch refused for its cost; carries the estimate (``error.estimated_cost_usd``)."""

    def __init__(self, message, estimated):
        super().__init__(message)
        self.estimated = estimated
        self.extra = {"estimated_cost_usd": float(estimated)}


class ConfirmCost(CostRefusal):
    code = "confirm_cost"

    def __init__(self, estimated, threshold=None):
        super().__init__(
            f"the estimated cost is ${estimated} (over ${threshold}); send confirm_cost_usd >= the estimate to launch",
            estimated,
        )


class BudgetExceeded(CostRefusal):
    code = "budget_exceeded"

    def __init__(self, estimated, left=None):
        what = f" (${left} left today)" if left is not None else ""
        super().__init__(f"the estimated cost ${estimated} is over your daily budget{what}", estimated)
