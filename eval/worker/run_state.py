"""What the worker knows of one attempt while it runs: streamed text, tokens,
the words a person reads, and why (if at all) it is being stopped."""

import asyncio
import enum
import time
from dataclasses import dataclass, field

from django.utils import timezone

from eval import metrics
from eval.jobs.batch import ProgressUpdate
from eval.jobs.claims import ClaimedJob


class StopReason(enum.StrEnum):
    """Why the worker cancelled an attempt's task."""

    CANCEL = "cancel"  # someone asked: the job ends cancelled
    SHUTDOWN = "shutdown"  # the worker is stopping: the job is handed back
    LOST = "lost"  # the lease went to someone else: write nothing


@dataclass
class RunState:
    job: ClaimedJob
    parts: list = field(default_factory=list)
    tokens: int = 0
    expected_tokens: int | None = None  # the provider's guess of the answer's length
    message: str = ""
    dirty: bool = False  # something a person would see changed since the last flush
    generating_since: float | None = None
    lease_renewed: float = field(default_factory=time.monotonic)
    stop_reason: StopReason | None = None
    finishing: bool = False  # the final write is on its way: too late to stop
    error_code: str = ""
    usage: tuple = (None, None, None)  # input tokens, output tokens, cost
    task: asyncio.Task | None = None
    claimed_at: object = field(default_factory=timezone.now)

    @property
    def key(self):
        """(job id, attempt): an attempt writing its end may overlap the next attempt of the same job."""
        return (self.job.id, self.job.attempt)

    @property
    def output(self):
        return "".join(self.parts)

    # --- told by the model call ---------------------------------------------------------
    def on_text(self, delta, tokens_so_far):
        self.parts.append(delta)
        self.tokens = tokens_so_far
        self.dirty = True

    def waiting(self, text):
        self.message, self.dirty = text, True

    def generating(self):
        self.generating_since = time.monotonic()
        self.waiting(f"Generating with {self.job.model}")

    # --- told by the executor -----------------------------------------------------------
    def stop(self, reason):
        """Cancel the attempt's task for ``reason``; False if it is already stopping or finishing."""
        if self.task is None or self.stop_reason is not None or self.finishing:
            return False
        self.stop_reason = reason
        self.task.cancel()
        return True

    # --- read by the flusher -------------------------------------------------------------
    def progress_due(self, now, settle):
        """Something a person would see changed, and it is worth a write: a
        waiting message at once, streamed text once the answer has streamed for
        ``settle`` s (a shorter answer shows its claim, then its end)."""
        if not self.dirty:
            return False
        return self.generating_since is None or now - self.generating_since >= settle

    def target_tokens(self):
        """What progress is measured against: the expected length while the
        answer is shorter than that, then max tokens (a long answer)."""
        expected = self.expected_tokens or self.job.max_tokens
        return max(1, self.job.max_tokens if self.tokens >= expected else expected)

    def progress_update(self):
        target = self.target_tokens()
        progress = min(99, self.tokens * 100 // target)
        return ProgressUpdate(
            self.job.id, self.job.attempt, progress, self.progress_text(target), self.output, self.tokens
        )

    def progress_text(self, target):
        if self.generating_since is None or not self.tokens:
            return self.message
        elapsed = max(time.monotonic() - self.generating_since, 1e-3)
        left = max(0.0, (target - self.tokens) / (self.tokens / elapsed))
        bound = " at most" if target == self.job.max_tokens else ""
        return f"Generating: {self.tokens} tokens, ~{left:.0f} s left{bound}"

    # --- at the end ------------------------------------------------------------------------
    def record_metrics(self, outcome, duration):
        job = self.job
        waited = (self.claimed_at - job.queued_at).total_seconds() if job.queued_at else None
        tokens_in, tokens_out, cost = self.usage
        metrics.observe_job(
            job.provider,
            job.model,
            outcome.value,
            self.error_code or None,
            duration,
            waited,
            tokens_in,
            tokens_out if tokens_out is not None else (self.tokens or None),
            cost,
        )
