"""The ``pubsub`` transport (production).

Messages carry only the job id (data) and ``task_id``/``provider``
attributes, never the prompt. The subscriber callback runs on the client's
thread pool: it parses the id, hands it to the asyncio loop and returns. The
message is acked when the row is settled (terminal, running elsewhere,
unknown) and nacked when this worker hands the job back; a job in retry
backoff keeps its message (the client extends the lease) until it is due.
"""

import asyncio
import logging
import time
import uuid

from django.utils import timezone

from eval.jobs import claims
from eval.jobs.claims import NotClaimed
from eval.jobs.outcomes import Outcome
from eval.queue.pubsub import subscription_path

log = logging.getLogger(__name__)

ONCE_MAX_IDLE_SECONDS = 30


def parse_job_id(data):
    """The job id in a message, or None if the message is malformed."""
    try:
        return uuid.UUID(data.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None


class PubSubTransport:
    name = "pubsub"

    def __init__(self, executor, *, once=False, max_jobs=None, subscription=None):
        self.executor = executor
        self.once = once
        self.max_jobs = max_jobs
        self.claimed = 0
        self.subscriptions = [subscription_path(subscription), subscription_path(subscription, bulk=True)]
        self._inbox: asyncio.Queue | None = None
        self._held = {}  # job_id -> message awaiting a retry or running here
        self._loop = None
        self.malformed = 0

    # Runs on the client's callback threads: hand off and return at once.
    def _callback(self, message):
        try:
            job_id = parse_job_id(message.data)
            if job_id is None:
                self.malformed += 1
                log.error("acking malformed message %s (data %r)", message.message_id, message.data[:100])
                message.ack()
                return
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, (job_id, message))
        except Exception:  # an exception here would nack and loop the message
            log.exception("could not hand off message %s; acking it", getattr(message, "message_id", "?"))
            message.ack()

    async def run(self, stopping: asyncio.Event):
        from google.cloud import pubsub_v1

        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        subscriber = pubsub_v1.SubscriberClient()
        flow = pubsub_v1.types.FlowControl(max_messages=self.executor.concurrency, max_lease_duration=3600)
        futures = [
            subscriber.subscribe(path, callback=self._callback, flow_control=flow) for path in self.subscriptions
        ]
        log.info("subscribed to %s (flow control %d each)", ", ".join(self.subscriptions), self.executor.concurrency)
        idle_since = time.monotonic()
        try:
            while not stopping.is_set():
                if self.max_jobs is not None and self.claimed >= self.max_jobs and not self.executor.running:
                    return
                for future in futures:
                    if future.done():
                        raise RuntimeError(f"the Pub/Sub stream stopped: {future.exception()}")
                try:
                    job_id, message = await asyncio.wait_for(self._inbox.get(), timeout=0.5)
                except TimeoutError:
                    if self.executor.running or self._held:
                        idle_since = time.monotonic()  # idle means no work at all, not no new message
                    elif self.once and await self._done_for_once(time.monotonic() - idle_since):
                        return
                    continue
                idle_since = time.monotonic()
                batch = [(job_id, message)]
                while not self._inbox.empty() and len(batch) < 500:
                    batch.append(self._inbox.get_nowait())
                await self._receive(batch)
        finally:
            for future in futures:
                future.cancel()
                try:
                    future.result(timeout=10)
                except Exception:
                    pass
            self._nack_held()
            subscriber.close()

    async def _done_for_once(self, idle_seconds):
        """--once: stop when idle and nothing is waiting for us (a message may
        take a moment to arrive after the stream opens); give up on jobs whose
        message never comes after ONCE_MAX_IDLE_SECONDS (the daemon republishes)."""
        if idle_seconds < 1:
            return False
        if idle_seconds > ONCE_MAX_IDLE_SECONDS:
            return True
        return not await self.executor.db.call(claims.anything_claimable)

    async def _receive(self, batch):
        """Claim the jobs of messages that arrived together in one statement."""
        if self.max_jobs is not None:
            room = max(0, self.max_jobs - self.claimed)
            for _, message in batch[room:]:
                message.nack()  # not ours to take any more
            batch = batch[:room]
        if not batch:
            return
        try:
            outcomes = await self.executor.db.claim(
                claims.claim_many, [job_id for job_id, _ in batch], self.executor.worker_id
            )
        except Exception:
            log.exception("claim failed; nacking %d message(s)", len(batch))
            for _, message in batch:
                message.nack()
            return
        for job_id, message in batch:
            outcome = outcomes.pop(job_id, None)  # a duplicate in the same batch finds it gone
            if outcome is None:
                outcome = claims.ClaimOutcome(None, NotClaimed.RUNNING)
            if job_id in self._held and outcome.job is None:
                message.ack()  # another copy of a message we already hold
            elif outcome.job is not None:
                self.claimed += 1
                self._held[job_id] = message
                self.executor.start_job(outcome.job, on_settled=self._settled)
            elif outcome.reason is NotClaimed.NOT_YET:
                # In retry backoff: keep the message and try again when due.
                self._held[job_id] = message
                delay = max(0.0, (outcome.available_at - timezone.now()).total_seconds())
                self._loop.call_later(delay, self._redeliver, job_id)
            else:
                # Terminal, unknown, or live on another worker (its lease guards it):
                # a duplicate never starts a second model call.
                log.info("acking message for %s job", outcome.reason, extra={"job_id": job_id})
                message.ack()

    def _redeliver(self, job_id):
        message = self._held.pop(job_id, None)
        if message is not None:
            self._inbox.put_nowait((job_id, message))

    def _settled(self, job_id, settled):
        if settled.needs_redelivery:
            # Our own transient retry: keep the message until the backoff ends.
            self._loop.call_later(max(0.0, settled.retry_at - time.monotonic()), self._redeliver, job_id)
            return
        message = self._held.pop(job_id, None)
        if message is None:
            return
        if settled.outcome is Outcome.HANDED_BACK:
            message.nack()  # redelivered to another worker at once
        else:
            message.ack()

    def _nack_held(self):
        for message in self._held.values():
            message.nack()
        self._held.clear()
