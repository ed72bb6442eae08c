"""The ``pubsub`` transport (production).

Messages carry only the job id (data) and ``task_id``/``provider``
attributes, never the prompt. The subscriber callback runs on the client's
thread pool: it parses the id, hands it to the asyncio loop and returns. The
message is acked when the row is settled (terminal, unknown, running
elsewhere) and nacked when this worker hands the job back; a job in retry
backoff keeps its message (the client extends its deadline) until it is due.
A job running on another worker, maybe a dead one whose lease has not run
out, is watched and claimed by id when that lease could have run out
(pubsub_holds.py).

Ack deadlines: the client asks for ACK_DEADLINE_SECONDS and keeps extending
it while a message is held. Left to its defaults it opened each stream with
a 60-s deadline; the emulator (and any broker that has not yet seen a dead
worker's connection close) goes on handing messages to a killed worker's
stream, and each came back only when that deadline ran out.

A subscription that does not exist is a set-up step left undone, not a
crash: the worker says which one and how to make it (SubscriptionMissing),
before it claims to have subscribed.
"""

import asyncio
import collections
import logging
import time
import uuid

from django.conf import settings
from django.utils import timezone

from eval.broker.pubsub import subscription_path
from eval.jobs import claims, repairs
from eval.jobs.claims import NotClaimed
from eval.jobs.outcomes import Outcome
from eval.transports.pubsub_holds import Holds, LeaseWatch

log = logging.getLogger(__name__)

ONCE_MAX_IDLE_SECONDS = 30
BATCH_MESSAGES = 500  # claimed in one statement at most
WAIT_SECONDS = 0.5  # for a message, before looking at the streams and --once again
CHECK_TIMEOUT_SECONDS = 10  # for the look at the subscriptions before subscribing
# Redelivery after a worker dies takes at most this (the least the client accepts,
# and an int: a float fails every stream open, silently, in google-cloud-pubsub 2.44).
ACK_DEADLINE_SECONDS = 10
MAX_LEASE_SECONDS = 3600  # how long the client keeps extending a held message


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


def _note_redelivery(job_id, message):
    """A message seen before (the subscription counts deliveries: it has a
    dead-letter policy) is logged; a warning from half the limit on."""
    attempt = message.delivery_attempt or 0
    if attempt < 2:
        return
    limit = settings.PUBSUB_MAX_DELIVERY_ATTEMPTS
    log.log(
        logging.WARNING if attempt * 2 >= limit else logging.INFO,
        "message redelivered (delivery attempt %d; the dead-letter topic takes it after %d)",
        attempt,
        limit,
        extra={"job_id": job_id, "delivery_attempt": attempt},
    )


class PubSubTransport:
    name = "pubsub"

    def __init__(self, executor, *, once=False, max_jobs=None, subscription=None):
        self.executor = executor
        self.once = once
        self.max_jobs = max_jobs
        self.claimed = 0
        self.malformed = 0
        self.subscriptions = [subscription_path(subscription), subscription_path(subscription, bulk=True)]
        self._inbox = collections.deque()  # (job_id, message or None: claim by id), filled on the loop
        self._arrived = asyncio.Event()
        self._held = None  # Holds, made on the loop
        self._watch = None  # LeaseWatch, made on the loop
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
        await self._claim(self._within_quota(self._within_room(batch)))
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
        self._held = Holds(self._loop, self._arrive)
        self._watch = LeaseWatch(self._loop, self._arrive, repairs.worker_repair_interval())
        self._subscriber = pubsub_v1.SubscriberClient()
        self._check_subscriptions()
        flow = pubsub_v1.types.FlowControl(
            max_messages=self.executor.concurrency,
            max_lease_duration=MAX_LEASE_SECONDS,
            min_duration_per_lease_extension=ACK_DEADLINE_SECONDS,
            max_duration_per_lease_extension=ACK_DEADLINE_SECONDS,
        )
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
            _note_redelivery(job_id, message)
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
    def _within_room(self, batch):
        """Claims by id (no message: flow control does not bound them) take
        only free slots; the rest are tried again after a while."""
        room = self.executor.free_slots - sum(message is not None for _, message in batch)
        kept = []
        for job_id, message in batch:
            if message is None and room <= 0:
                self._loop.call_later(repairs.worker_repair_interval(), self._arrive, job_id, None)
                continue
            room -= message is None
            kept.append((job_id, message))
        return kept

    def _within_quota(self, batch):
        """--max-jobs: nack what is beyond it (not ours to take any more)."""
        if self.max_jobs is None:
            return batch
        room = max(0, self.max_jobs - self.claimed)
        for _, message in batch[room:]:
            _nack(message)
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
                _nack(message)
            return
        for job_id, message in batch:
            # A duplicate in the same batch finds its outcome gone: the job is running here.
            outcome = outcomes.pop(job_id, None) or claims.ClaimOutcome(None, NotClaimed.RUNNING)
            self._route(job_id, message, outcome)

    def _route(self, job_id, message, outcome):
        """Start a claimed job; hold the message of one in backoff; watch the
        lease of one running elsewhere; ack the rest. ``message`` is None for
        a claim by id (a watch's)."""
        if outcome.job is not None:
            self.claimed += 1
            self._watch.forget(job_id)
            self._held.keep(job_id, message)
            self.executor.start_job(outcome.job, on_settled=self._settled)
        elif job_id in self._held:
            _ack(message)  # another copy of a message we already hold
        elif outcome.reason is NotClaimed.NOT_YET:
            # In retry backoff: keep the message and try again when due.
            delay = (outcome.available_at - timezone.now()).total_seconds()
            self._held.look_again(job_id, delay, message)
        else:
            # Running elsewhere: watched until its lease could have run out (its
            # holder may be dead), ended once the holder renews it. Terminal or
            # unknown: done. Either way a copy never starts a second model call.
            if outcome.reason is not NotClaimed.RUNNING or not self._watch.watch(job_id, outcome.lease_expires_at):
                self._watch.forget(job_id)
            if message is not None:
                log.info("acking message for %s job", outcome.reason, extra={"job_id": job_id})
                message.ack()

    def leases_requeued(self):
        """The worker's lease repair requeued jobs: the watched ones are claimed now."""
        if self._watch is not None:
            self._watch.leases_requeued()

    # --- after a claim -------------------------------------------------------------------------
    def _settled(self, job_id, settled):
        if settled.needs_redelivery:
            # Our own transient retry: keep the message until the backoff ends.
            self._held.look_again(job_id, settled.retry_at - time.monotonic())
            return
        message = self._held.take(job_id)
        if message is None:  # none held (claimed by id)
            return
        if settled.outcome is Outcome.HANDED_BACK:
            message.nack()  # redelivered to another worker at once
        else:
            message.ack()

    # --- --once and stopping -------------------------------------------------------------------
    def _busy(self):
        """Work in hand: idle means none at all, not merely no new message."""
        if self.executor.running or (self._held is not None and len(self._held)) or self._inbox:
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
        for message in self._held.release() if self._held is not None else ():
            message.nack()
        while self._inbox:
            _, message = self._inbox.popleft()
            _nack(message)


def _ack(message):
    if message is not None:
        message.ack()


def _nack(message):
    if message is not None:
        message.nack()
