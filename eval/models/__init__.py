"""The app's models, one module per concern; import them from here."""

from eval.models.alerts import Alert, AlertNotice
from eval.models.datasets import DatasetVersion
from eval.models.evaluation import Judgement, ModelSeen, PairAssignment, ReviewDraft, Rubric, SourceRubric
from eval.models.jobs import JobStatus, LLMJob, WorkerHeartbeat
from eval.models.provider_rate_slots import ProviderRateSlot
from eval.models.reviews import Review
from eval.models.runs import DailySpend, Run
from eval.models.tasks import Task, prompt_fingerprint
from eval.models.templates import PromptTemplate
from eval.models.tokens import ApiToken

__all__ = [
    "Alert",
    "AlertNotice",
    "ApiToken",
    "DailySpend",
    "DatasetVersion",
    "JobStatus",
    "Judgement",
    "LLMJob",
    "ModelSeen",
    "PairAssignment",
    "PromptTemplate",
    "ProviderRateSlot",
    "Review",
    "ReviewDraft",
    "Rubric",
    "Run",
    "SourceRubric",
    "Task",
    "WorkerHeartbeat",
    "prompt_fingerprint",
]
