"""A circuit breaker for the broker: after a few failed publishes in a row,
stop trying for a cool-down instead of spending a deadline on every job. What
is not published meanwhile stays in the outbox (``published_at`` NULL) for the
daemon's republish repair.

After the cool-down the next publish is a trial: a success closes the
breaker, a failure opens it again for another cool-down.
"""

import logging
import threading
import time

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, *, failures, cooldown_seconds, clock=time.monotonic):
        self.failures_to_open = failures
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.failures = 0  # in a row
        self.open_until = None  # clock time the cool-down ends; None while closed
        self._lock = threading.Lock()  # request threads, the publisher thread and repairs share it

    def allows(self):
        """May a publish be tried now (closed, or the cool-down is over)?"""
        with self._lock:
            return self.open_until is None or self.clock() >= self.open_until

    @property
    def is_open(self):
        return not self.allows()

    def succeeded(self):
        with self._lock:
            was_open = self.open_until is not None
            self.failures, self.open_until = 0, None
        if was_open:
            log.info("Pub/Sub publishing resumed")

    def failed(self):
        with self._lock:
            self.failures += 1
            if self.failures < self.failures_to_open:
                return
            self.open_until = self.clock() + self.cooldown_seconds
        log.warning(
            "Pub/Sub publishing paused for %.0f s after %d failed publish(es) in a row; "
            "queued jobs stay in the outbox for the daemon's republish",
            self.cooldown_seconds,
            self.failures,
        )
