"""The app's models, one module per concern; import them from here."""

from eval.models.jobs import JobStatus, LLMJob, WorkerHeartbeat
from eval.models.provider_rate_slots import ProviderRateSlot
from eval.models.reviews import Review
from eval.models.tasks import Task
from eval.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "JobStatus",
    "LLMJob",
    "ProviderRateSlot",
    "Review",
    "Task",
    "WorkerHeartbeat",
]
