"""Which job statuses allow what: the one place every view, serializer,
command and the admin asks. (The transitions themselves live in
transitions.py and endings.py.)

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled
    running -> queued   (transient error, lease expired, hand-back)
"""

from eval.models.jobs import LIVE_STATUSES, TERMINAL_STATUSES, JobStatus

QUEUED, RUNNING = JobStatus.QUEUED, JobStatus.RUNNING
SUCCEEDED, FAILED, CANCELLED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED

ALL = tuple(JobStatus.values)
# Still to end (LLMJob.objects.live()): queued or running.
LIVE = LIVE_STATUSES
# Never change again; retry makes a new job.
TERMINAL = TERMINAL_STATUSES
# A person may ask to stop these (a queued job stops at once, a running one at the worker's next flush).
CANCELLABLE = LIVE
# A retry repeats these as a new job.
RETRYABLE = frozenset({FAILED, CANCELLED})
# An operator may put these back in the queue (e.g. a worker known dead).
REQUEUEABLE = LIVE
# A job of a task that a bulk launch would repeat: it is running, waiting, or already has its answer.
LIVE_OR_SUCCEEDED = LIVE | {SUCCEEDED}


def is_terminal(status):
    return status in TERMINAL


def can_cancel(status, cancel_requested=False):
    return status in CANCELLABLE and not cancel_requested


def can_retry(status):
    return status in RETRYABLE


def can_requeue(status):
    return status in REQUEUEABLE
