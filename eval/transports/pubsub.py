"""The ``pubsub`` transport (production).

Messages carry only the job id (data) and ``task_id``/``provider``
attributes, never the prompt. The subscriber callback runs on the client's
thread pool: it parses the id, hands it to the asyncio loop and returns. The
message is acked when the row is settled (terminal, running elsewhere,
unknown) and nacked when this worker hands the job back; a job in retry
backoff keeps its message (the client extends the lease) until it is due.

A subscription that does not exist is a set-up step left undone, not a
crash: the worker says which one and how to make it (SubscriptionMissing),
before it claims to have subscribed.
"""

import asyncio
import collections
import logging
import time
import uuid

from django.utils import timezone

from eval.broker.pubsub import subscription_path
from eval.jobs import claims
from eval.jobs.claims import NotClaimed
from eval.jobs.outcomes import Outcome

log = logging.getLogger(__name__)

ONCE_MAX_IDLE_SECONDS = 30
BATCH_MESSAGES = 500  # claimed in one statement at most
WAIT_SECONDS = 0.5  # for a message, before looking at the streams and --once again
CHECK_TIMEOUT_SECONDS = 10  # for the look at the subscriptions before subscribing


class SubscriptionMissing(Exception):
    """A subscription the worker reads does not exist."""

    def __init__(self, path):
        self.path = path
        super().__init__(
            f"the Pub/Sub subscription {path} does not exist. Create the topics and subscriptions with "
            "`manage.py pubsub_setup` (safe to run again), then start the worker."
        )


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
        self.malformed = 0
        self.subscriptions = [subscription_path(subscription), subscription_path(subscription, bulk=True)]
        self._inbox = collections.deque()  # (job_id, message), filled on the loop
        self._arrived = asyncio.Event()
        self._held = {}  # job_id -> message awaiting a retry or running here
        self._loop = None
        self._subscriber = None
        self._streams = []
        self._idle_since = time.monotonic()

    async def run(self, stopping: asyncio.Event):
        try:
            self._open()
            while not stopping.is_set() and not await self.finished():
                if not await self.receive():
                    await self._sleep(stopping)
        finally:
            self._close()

    # --- steps ------------------------------------------------------------------------------
    async def receive(self):
        """Claim the jobs of the messages waiting, in one statement. False if none waits."""
        if not self._inbox:
            return False
        self._arrived.clear()
        batch = [self._inbox.popleft() for _ in range(min(len(self._inbox), BATCH_MESSAGES))]
        self._idle_since = time.monotonic()
        await self._claim(self._within_quota(batch))
        return True

    async def finished(self):
        """--max-jobs: all N claimed and settled; --once: idle with nothing to claim.
        Raises if a subscription's stream stopped."""
        self._check_streams()
        if self.max_jobs is not None and self.claimed >= self.max_jobs and not self.executor.running:
            return True
        if not self.once or self._busy():
            return False
        return await self._done_for_once(time.monotonic() - self._idle_since)

    # --- the subscriber ---------------------------------------------------------------------
    def _open(self):
        from google.cloud import pubsub_v1  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

        self._loop = asyncio.get_running_loop()
        self._subscriber = pubsub_v1.SubscriberClient()
        self._check_subscriptions()
        flow = pubsub_v1.types.FlowControl(max_messages=self.executor.concurrency, max_lease_duration=3600)
        self._streams = [
            self._subscriber.subscribe(path, callback=self._callback, flow_control=flow) for path in self.subscriptions
        ]
        log.info("subscribed to %s (flow control %d each)", ", ".join(self.subscriptions), self.executor.concurrency)

    def _check_subscriptions(self):
        """Each subscription exists (a stream on a missing one fails only later,
        with a traceback); a broker that does not answer is left to the streams,
        which reconnect."""
        from google.api_core import exceptions  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

        for path in self.subscriptions:
            try:
                self._subscriber.get_subscription(
                    request={"subscription": path}, retry=None, timeout=CHECK_TIMEOUT_SECONDS
                )
            except exceptions.NotFound:
                raise SubscriptionMissing(path) from None
            except exceptions.GoogleAPICallError as error:
                log.warning(
                    "could not look at subscription %s (%s: %s); subscribing anyway", path, type(error).__name__, error
                )

    def _check_streams(self):
        from google.api_core import exceptions  # noqa: PLC0415  (google-cloud-pubsub is heavy: loaded only where it is used)

        for path, stream in zip(self.subscriptions, self._streams, strict=True):
            if stream.done():
                error = stream.exception()
                if isinstance(error, exceptions.NotFound):  # deleted while we ran
                    raise SubscriptionMissing(path)
                raise RuntimeError(f"the Pub/Sub stream stopped: {error}")

    def _close(self):
        for stream in self._streams:
            stream.cancel()
            try:
                stream.result(timeout=10)
            except Exception:
                pass
        self._nack_unfinished()
        if self._subscriber is not None:
            self._subscriber.close()

    # Runs on the client's callback threads: hand off and return at once.
    def _callback(self, message):
        try:
            job_id = parse_job_id(message.data)
            if job_id is None:
                self.malformed += 1
                log.error("acking malformed message %s (data %r)", message.message_id, message.data[:100])
                message.ack()
                return
            self._loop.call_soon_threadsafe(self._arrive, job_id, message)
        except Exception:  # an exception here would nack and loop the message
            log.exception("could not hand off message %s; acking it", getattr(message, "message_id", "?"))
            message.ack()

    def _arrive(self, job_id, message):
        self._inbox.append((job_id, message))
        self._arrived.set()

    async def _sleep(self, stopping):
        """Until a message arrives, a stop, or WAIT_SECONDS."""
        waiters = [asyncio.ensure_future(self._arrived.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # --- claiming -----------------------------------------------------------------------------
    def _within_quota(self, batch):
        """--max-jobs: nack what is beyond it (not ours to take any more)."""
        if self.max_jobs is None:
            return batch
        room = max(0, self.max_jobs - self.claimed)
        for _, message in batch[room:]:
            message.nack()
        return batch[:room]

    async def _claim(self, batch):
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
            # A duplicate in the same batch finds its outcome gone: the job is running here.
            outcome = outcomes.pop(job_id, None) or claims.ClaimOutcome(None, NotClaimed.RUNNING)
            self._route(job_id, message, outcome)

    def _route(self, job_id, message, outcome):
        """Start a claimed job, hold the message of one in backoff, ack the rest."""
        if outcome.job is not None:
            self.claimed += 1
            self._held[job_id] = message
            self.executor.start_job(outcome.job, on_settled=self._settled)
        elif job_id in self._held:
            message.ack()  # another copy of a message we already hold
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

    # --- after a claim -------------------------------------------------------------------------
    def _redeliver(self, job_id):
        message = self._held.pop(job_id, None)
        if message is not None:
            self._arrive(job_id, message)

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

    # --- --once and stopping -------------------------------------------------------------------
    def _busy(self):
        """Work in hand: idle means none at all, not merely no new message."""
        if self.executor.running or self._held or self._inbox:
            self._idle_since = time.monotonic()
            return True
        return False

    async def _done_for_once(self, idle_seconds):
        """--once: stop when idle and nothing is waiting for us (a message may
        take a moment to arrive after the stream opens); give up on jobs whose
        message never comes after ONCE_MAX_IDLE_SECONDS (the daemon republishes)."""
        if idle_seconds < 1:
            return False
        if idle_seconds > ONCE_MAX_IDLE_SECONDS:
            return True
        return not await self.executor.db.call(claims.anything_claimable)

    def _nack_unfinished(self):
        """Messages held or not yet looked at go back to the subscription for another worker."""
        for message in self._held.values():
            message.nack()
        self._held.clear()
        while self._inbox:
            _, message = self._inbox.popleft()
            message.nack()
