"""Job error codes (DESIGN "HTTP API") and the refusals the job engine raises
to its callers (views, commands, the admin)."""

from eval.providers.errors import DESCRIPTIONS as PROVIDER_DESCRIPTIONS

# Codes the engine itself gives a job, beside the providers' own.
ENGINE_DESCRIPTIONS = {
    "timed_out": "The job ran past its time limit",
    "lease_expired": "The worker running this job stopped answering",
    "bad_judge_output": "The LLM judge did not answer with the JSON asked for",
}
DESCRIPTIONS = {**PROVIDER_DESCRIPTIONS, **ENGINE_DESCRIPTIONS}


def describe(code):
    """A job error code in words a reviewer reads."""
    return DESCRIPTIONS.get(code, code)


class JobError(Exception):
    """Base for refusals raised by the job engine to its callers."""

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


class RateLimited(JobError):
    """A per-user cap refused a new job for now (eval/jobs/quota.py); ``headers`` say when to come back."""

    code = "rate_limited"

    def __init__(self, message, *, retry_after):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class CostRefusal(JobConflict):
    """A spend refused for its cost; carries the estimate (``error.estimated_cost_usd``)."""

    def __init__(self, message, estimated):
        super().__init__(message)
        self.estimated = estimated
        self.extra = {"estimated_cost_usd": float(estimated)}


class BudgetExceeded(CostRefusal):
    """Over the caller's USER_DAILY_BUDGET_USD: the one refusal of every kind of spend."""

    code = "budget_exceeded"

    def __init__(self, estimated, left=None):
        what = f" (${left} left today)" if left is not None else ""
        super().__init__(f"the estimated cost ${estimated} is over your daily budget{what}", estimated)


class MaxCostExceeded(BudgetExceeded):
    """Over the run's own max_cost_usd (the same code as the daily budget's refusal)."""

    def __init__(self, estimated, limit):
        message = f"the estimated cost ${estimated} is over the run's max_cost_usd (${limit})"
        CostRefusal.__init__(self, message, estimated)


class ConfirmCost(CostRefusal):
    """A bulk launch over BULK_CONFIRM_COST_USD sent without confirm_cost_usd >= its estimate."""

    code = "confirm_cost"

    def __init__(self, estimated, threshold=None):
        super().__init__(
            f"the estimated cost is ${estimated} (over ${threshold}); send confirm_cost_usd >= the estimate to launch",
            estimated,
        )
