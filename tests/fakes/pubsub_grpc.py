"""An in-process fake of the Pub/Sub gRPC API, for fault tests.

The official emulator (tests/fakes/pubsub_emulator.py) is the reference for
integration tests. This fake covers what the emulator cannot do: short ack
deadlines (``deadline_scale``), injected errors and delivery counters. The
real google-cloud-pubsub client talks to it unchanged once
``PUBSUB_EMULATOR_HOST`` is set to ``fake.start()``'s answer.

    fake = FakePubSubServer(deadline_scale=0.1)   # a 10 s ack deadline lasts 1 s
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", fake.start())
    ...
    fake.stop()   # after future.cancel()/result(), publisher.stop(), subscriber.close()

Semantics kept from the real service: a subscription sees only messages
published after it was created; an un-acked message comes back after its ack
deadline; a nack (modack 0) makes it available again at once; acks and
modacks for unknown or stale ack ids are ignored; a dead-letter policy
forwards a message after ``max_delivery_attempts`` deliveries.
"""

from __future__ import annotations

import collections
import itertools
import re
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1 import types

# Raw protobuf classes (the proto-plus wrappers' .pb()), used throughout.
Topic = types.Topic.pb()
Subscription = types.Subscription.pb()
PubsubMessage = types.PubsubMessage.pb()
ReceivedMessage = types.ReceivedMessage.pb()
PublishRequest = types.PublishRequest.pb()
PublishResponse = types.PublishResponse.pb()
PullRequest = types.PullRequest.pb()
PullResponse = types.PullResponse.pb()
AcknowledgeRequest = types.AcknowledgeRequest.pb()
ModifyAckDeadlineRequest = types.ModifyAckDeadlineRequest.pb()
StreamingPullRequest = types.StreamingPullRequest.pb()
StreamingPullResponse = types.StreamingPullResponse.pb()
GetTopicRequest = types.GetTopicRequest.pb()
DeleteTopicRequest = types.DeleteTopicRequest.pb()
GetSubscriptionRequest = types.GetSubscriptionRequest.pb()
DeleteSubscriptionRequest = types.DeleteSubscriptionRequest.pb()
Empty = empty_pb2.Empty

# Same rule as the real service and the emulator: ids of 3-255 characters.
_NAME_RE = re.compile(r"^projects/[^/]+/(topics|subscriptions)/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")
_DEFAULT_ACK_DEADLINE = 10  # seconds, before scaling
_POLL = 0.05  # how often waiting streams re-check deadlines and shutdown


@dataclass
class _Record:
    """One message in one subscription."""

    message: PubsubMessage
    attempts: int = 0  # deliveries so far
    ack_id: str | None = None  # current lease, None while available
    expires: float = 0.0  # monotonic time the current lease ends
    stream: object = None  # the StreamingPull stream holding the lease, if any


@dataclass
class _Sub:
    pb: Subscription
    ready: collections.deque = field(default_factory=collections.deque)  # _Records to deliver
    leased: dict = field(default_factory=dict)  # ack_id -> _Record


class FakePubSubServer:
    """Publisher and Subscriber services on 127.0.0.1, with fault injection."""

    def __init__(self, deadline_scale: float = 1.0, max_workers: int = 64) -> None:
        self.deadline_scale = deadline_scale
        self._max_workers = max_workers
        self._cond = threading.Condition()  # guards all state below; notified on any change
        self._topics: dict[str, Topic] = {}
        self._subs: dict[str, _Sub] = {}
        self._ids = itertools.count(1)
        self._failures: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._streams: set[object] = set()  # contexts of open StreamingPull calls
        self._readers: list[threading.Thread] = []  # their request-reading threads
        self._stopping = False
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self.host: str | None = None
        # Counters for assertions.
        self.published = 0  # messages accepted by Publish or publish_raw
        self.publish_calls = 0  # Publish RPCs, failed ones included
        self.delivered: collections.Counter[str] = collections.Counter()  # message_id -> deliveries
        self.acked = 0
        self.nacked = 0
        self.acked_ids: set[str] = set()  # message ids acked at least once

    # ----------------------------------------------------------- lifecycle

    def start(self) -> str:
        """Serve on a free local port; return "127.0.0.1:PORT" for PUBSUB_EMULATOR_HOST."""
        self._executor = futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="fake-pubsub")
        self._server = grpc.server(self._executor)
        self._server.add_generic_rpc_handlers(self._handlers())
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.host = f"127.0.0.1:{port}"
        return self.host

    def stop(self) -> None:
        """End open streams with CANCELLED, stop the server, then its threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            end = time.monotonic() + 2
            while self._streams and time.monotonic() < end:
                self._cond.wait(_POLL)
        if self._server is not None:
            self._server.stop(0.2).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        for reader in self._readers:
            reader.join(timeout=2)
        self._readers.clear()
        self._server = self._executor = None

    def __enter__(self) -> FakePubSubServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------ test helpers

    def fail_next(self, method: str, n: int = 1, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        """Make the next ``n`` calls of ``method`` (e.g. "Publish", "StreamingPull") fail with ``code``."""
        with self._cond:
            self._failures[method].extend([code] * n)

    def fail_next_publish(self, n: int = 1, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        """Make the next ``n`` Publish calls fail. The client retries UNAVAILABLE on its own."""
        self.fail_next("Publish", n, code)

    def publish_raw(self, name: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Put a message, bypassing the client, on a topic or straight into one subscription."""
        msg = PubsubMessage(data=data, attributes=attributes or {})
        with self._cond:
            if name in self._subs:
                self._stamp_locked(msg)
                self._subs[name].ready.append(_Record(msg))
                self.published += 1
                self._cond.notify_all()
            elif name in self._topics:
                self._publish_locked(name, msg)
            else:
                raise KeyError(f"no such topic or subscription: {name}")
        return msg.message_id

    def outstanding(self, subscription: str) -> tuple[int, int]:
        """(ready, leased) message counts of a subscription."""
        with self._cond:
            sub = self._subs[subscription]
            return len(sub.ready), len(sub.leased)

    # ------------------------------------------------------ state helpers

    def _stamp_locked(self, msg: PubsubMessage) -> None:
        msg.message_id = str(next(self._ids))
        msg.publish_time.GetCurrentTime()

    def _publish_locked(self, topic: str, msg: PubsubMessage) -> None:
        self._stamp_locked(msg)
        for sub in self._subs.values():
            if sub.pb.topic == topic:
                copy = PubsubMessage()
                copy.CopyFrom(msg)
                sub.ready.append(_Record(copy))
        self.published += 1
        self._cond.notify_all()

    def _release_locked(self, sub: _Sub, ack_id: str, front: bool = False) -> None:
        """End a lease; the message becomes available again."""
        rec = sub.leased.pop(ack_id)
        rec.ack_id, rec.stream = None, None
        (sub.ready.appendleft if front else sub.ready.append)(rec)
        self._cond.notify_all()

    def _expire_locked(self) -> None:
        """Redeliver every message whose (scaled) ack deadline has passed."""
        now = time.monotonic()
        for sub in self._subs.values():
            for ack_id in [a for a, rec in sub.leased.items() if rec.expires <= now]:
                self._release_locked(sub, ack_id, front=True)

    def _take_locked(self, name: str, limit: int, deadline_s: float, stream: object = None) -> list:
        """Lease up to ``limit`` ready messages of subscription ``name``."""
        self._expire_locked()
        sub = self._subs[name]
        dlp = sub.pb.dead_letter_policy if sub.pb.HasField("dead_letter_policy") else None
        out = []
        while sub.ready and len(out) < limit:
            rec = sub.ready.popleft()
            if dlp and dlp.dead_letter_topic and rec.attempts >= (dlp.max_delivery_attempts or 5):
                if dlp.dead_letter_topic in self._topics:
                    dead = PubsubMessage(data=rec.message.data, attributes=dict(rec.message.attributes))
                    self._publish_locked(dlp.dead_letter_topic, dead)
                continue
            rec.attempts += 1
            rec.ack_id = f"{name}:{rec.message.message_id}:{rec.attempts}"
            rec.expires = time.monotonic() + deadline_s * self.deadline_scale
            rec.stream = stream
            sub.leased[rec.ack_id] = rec
            self.delivered[rec.message.message_id] += 1
            out.append(
                ReceivedMessage(ack_id=rec.ack_id, message=rec.message, delivery_attempt=rec.attempts if dlp else 0)
            )
        return out

    def _ack_locked(self, name: str, ack_ids) -> None:
        sub = self._subs.get(name)
        for ack_id in ack_ids:
            rec = sub.leased.pop(ack_id, None) if sub else None
            if rec is not None:
                self.acked += 1
                self.acked_ids.add(rec.message.message_id)
        self._cond.notify_all()

    def _modack_locked(self, name: str, ack_ids, seconds: int) -> None:
        sub = self._subs.get(name)
        for ack_id in ack_ids:
            if sub is None or ack_id not in sub.leased:
                continue  # stale or unknown: ignored, as the real service does
            if seconds == 0:
                self.nacked += 1
                self._release_locked(sub, ack_id, front=True)
            else:
                sub.leased[ack_id].expires = time.monotonic() + seconds * self.deadline_scale

    # ------------------------------------------------------ RPC handlers

    def _check(self, method: str, context: grpc.ServicerContext) -> None:
        """Abort with an injected failure, if one is queued for this method."""
        with self._cond:
            code = self._failures[method].popleft() if self._failures[method] else None
        if code is not None:
            context.abort(code, f"injected failure of {method}")

    @staticmethod
    def _valid(name: str, context: grpc.ServicerContext) -> None:
        if not _NAME_RE.match(name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name: {name}")

    def _sub_or_abort(self, name: str, context: grpc.ServicerContext) -> _Sub:
        sub = self._subs.get(name)
        if sub is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist: {name}")
        return sub

    def create_topic(self, request, context):
        self._check("CreateTopic", context)
        self._valid(request.name, context)
        with self._cond:
            if request.name in self._topics:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Topic already exists")
            self._topics[request.name] = Topic(name=request.name, labels=request.labels)
            return self._topics[request.name]

    def get_topic(self, request, context):
        self._check("GetTopic", context)
        with self._cond:
            if request.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Topic does not exist: {request.topic}")
            return self._topics[request.topic]

    def delete_topic(self, request, context):
        self._check("DeleteTopic", context)
        with self._cond:
            if self._topics.pop(request.topic, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Topic does not exist: {request.topic}")
            for sub in self._subs.values():
                if sub.pb.topic == request.topic:
                    sub.pb.topic = "_deleted-topic_"
            return Empty()

    def publish(self, request, context):
        with self._cond:
            self.publish_calls += 1
        self._check("Publish", context)
        with self._cond:
            if request.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Topic does not exist: {request.topic}")
            ids = []
            for msg in request.messages:
                self._publish_locked(request.topic, msg)
                ids.append(msg.message_id)
            return PublishResponse(message_ids=ids)

    def create_subscription(self, request, context):
        self._check("CreateSubscription", context)
        self._valid(request.name, context)
        with self._cond:
            if request.name in self._subs:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Subscription already exists")
            if request.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Topic does not exist: {request.topic}")
            pb = Subscription()
            pb.CopyFrom(request)
            pb.ack_deadline_seconds = pb.ack_deadline_seconds or _DEFAULT_ACK_DEADLINE
            self._subs[request.name] = _Sub(pb)
            return pb

    def get_subscription(self, request, context):
        self._check("GetSubscription", context)
        with self._cond:
            return self._sub_or_abort(request.subscription, context).pb

    def delete_subscription(self, request, context):
        self._check("DeleteSubscription", context)
        with self._cond:
            self._sub_or_abort(request.subscription, context)
            del self._subs[request.subscription]
            self._cond.notify_all()  # streams on it notice and end with NOT_FOUND
            return Empty()

    def pull(self, request, context):
        self._check("Pull", context)
        end = time.monotonic() + 1.0  # wait up to a second for something to arrive
        with self._cond:
            while True:
                sub = self._sub_or_abort(request.subscription, context)
                msgs = self._take_locked(request.subscription, request.max_messages or 100, sub.pb.ack_deadline_seconds)
                if msgs or self._stopping or time.monotonic() >= end:
                    return PullResponse(received_messages=msgs)
                self._cond.wait(_POLL)

    def acknowledge(self, request, context):
        self._check("Acknowledge", context)
        with self._cond:
            self._ack_locked(request.subscription, request.ack_ids)
        return Empty()

    def modify_ack_deadline(self, request, context):
        self._check("ModifyAckDeadline", context)
        with self._cond:
            self._modack_locked(request.subscription, request.ack_ids, request.ack_deadline_seconds)
        return Empty()

    def streaming_pull(self, request_iterator, context):
        self._check("StreamingPull", context)
        first = next(request_iterator)
        name = first.subscription
        state = {"deadline": first.stream_ack_deadline_seconds or _DEFAULT_ACK_DEADLINE, "open": True}
        limit = first.max_outstanding_messages or 1000
        with self._cond:
            self._sub_or_abort(name, context)
            self._streams.add(context)

        reader = threading.Thread(
            target=self._read_stream_requests,
            args=(name, itertools.chain([first], request_iterator), state),
            name="fake-pubsub-reader",
            daemon=True,
        )
        reader.start()
        self._readers.append(reader)
        try:
            while context.is_active() and state["open"]:
                with self._cond:
                    if self._stopping:
                        break
                    if name not in self._subs:
                        context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist: {name}")
                    # Server-side flow control, as the real service does it.
                    held = sum(1 for rec in self._subs[name].leased.values() if rec.stream is context)
                    msgs = self._take_locked(name, limit - held, state["deadline"], context) if held < limit else []
                    if not msgs:
                        self._cond.wait(_POLL)
                        continue
                yield StreamingPullResponse(received_messages=msgs)
            if self._stopping:
                # CANCELLED makes the client give up quietly; OK would surface as an
                # error and UNAVAILABLE would make it reconnect forever.
                context.abort(grpc.StatusCode.CANCELLED, "fake server shutting down")
        finally:
            with self._cond:
                self._streams.discard(context)
                self._cond.notify_all()

    def _read_stream_requests(self, name, requests, state) -> None:
        """Later requests on a stream: heartbeats, deadline changes and (rarely) acks."""
        try:
            for req in requests:
                with self._cond:
                    if req.stream_ack_deadline_seconds:
                        state["deadline"] = req.stream_ack_deadline_seconds
                    self._ack_locked(name, req.ack_ids)
                    for ack_id, secs in zip(req.modify_deadline_ack_ids, req.modify_deadline_seconds, strict=False):
                        self._modack_locked(name, [ack_id], secs)
        except grpc.RpcError:
            pass  # the call ended
        finally:
            with self._cond:
                state["open"] = False
                self._cond.notify_all()

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(fn, req_cls, resp_cls):
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req_cls.FromString, response_serializer=resp_cls.SerializeToString
            )

        publisher = {
            "CreateTopic": unary(self.create_topic, Topic, Topic),
            "GetTopic": unary(self.get_topic, GetTopicRequest, Topic),
            "DeleteTopic": unary(self.delete_topic, DeleteTopicRequest, Empty),
            "Publish": unary(self.publish, PublishRequest, PublishResponse),
        }
        subscriber = {
            "CreateSubscription": unary(self.create_subscription, Subscription, Subscription),
            "GetSubscription": unary(self.get_subscription, GetSubscriptionRequest, Subscription),
            "DeleteSubscription": unary(self.delete_subscription, DeleteSubscriptionRequest, Empty),
            "Pull": unary(self.pull, PullRequest, PullResponse),
            "Acknowledge": unary(self.acknowledge, AcknowledgeRequest, Empty),
            "ModifyAckDeadline": unary(self.modify_ack_deadline, ModifyAckDeadlineRequest, Empty),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(
                self.streaming_pull,
                request_deserializer=StreamingPullRequest.FromString,
                response_serializer=StreamingPullResponse.SerializeToString,
            ),
        }
        return [
            grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
        ]
