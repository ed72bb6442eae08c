"""How an attempt ended, as the worker tells its transport."""

import enum
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    QUEUED = "queued"  # requeued by this worker for a retry after a backoff
    HANDED_BACK = "handed_back"  # a stopping worker gave it back; the attempt is not consumed
    LOST = "lost"  # this worker no longer held it (lease expired); someone else owns the row


@dataclass(frozen=True)
class Settled:
    """The end of one attempt: ``retry_at`` (monotonic seconds) when QUEUED."""

    outcome: Outcome
    retry_at: float | None = None

    @property
    def needs_redelivery(self):
        """The row is queued again by us and its message must come back at ``retry_at``."""
        return self.outcome is Outcome.QUEUED and self.retry_at is not None
