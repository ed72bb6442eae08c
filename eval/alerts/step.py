"""The daemon's alert step: read, evaluate the rules, move the table, then send
what is owed within the step's budget (three sends' worth of
ALERT_SEND_TIMEOUT_SECONDS by default). A channel that fails is not tried
again in the same pass (it is likely down, and each try could cost the whole
timeout); its notices wait for the next pass."""

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from eval.alerts import notify, rules, snapshot, state

log = logging.getLogger(__name__)

SENDS_PER_BUDGET = 3


@dataclass
class Report:
    active: int = 0
    changes: state.Changes = field(default_factory=state.Changes)
    sent: int = 0
    failed: int = 0
    waiting: int = 0  # owed but not tried in this pass (budget spent, or its channel failed)

    @property
    def did_work(self):
        changes = self.changes
        return bool(changes.fired or changes.repeated or changes.resolved or self.sent)


def run_step(now=None, *, budget_s=None, clock=time.monotonic, should_stop=None):
    """One evaluation and one round of sends; ``now`` and ``clock`` are injectable for tests.
    Once ``should_stop()`` (SIGTERM), no send starts and one in flight is given up on."""
    now = now or timezone.now()
    limits = rules.Limits.from_settings()
    conditions = rules.evaluate(snapshot.read(now, limits.window_s), now, limits)
    report = Report(active=len(conditions))
    report.changes = state.apply(conditions, now, repeat_s=settings.ALERT_REPEAT_SECONDS, channels=notify.channels())
    deliver(now, report, budget_s=budget_s, clock=clock, should_stop=should_stop or (lambda: False))
    state.tidy(now)
    return report


def deliver(now, report, *, budget_s=None, clock=time.monotonic, should_stop=lambda: False):
    timeout = settings.ALERT_SEND_TIMEOUT_SECONDS
    budget_s = SENDS_PER_BUDGET * timeout if budget_s is None else budget_s
    deadline = clock() + budget_s
    down = set()
    configured = notify.channels()
    for notice in state.due(now):
        if notice.channel not in configured:  # its setting was removed since: nowhere to send it
            state.drop(notice)
            continue
        if notice.channel in down or deadline - clock() < timeout or should_stop():
            report.waiting += 1
            continue
        # Held for twice the send's bound: a daemon that dies mid-send frees it for the next pass.
        if not state.claim(notice, now, hold_s=2 * timeout):
            continue
        error = notify.send(notice, timeout, should_stop)
        if error:
            down.add(notice.channel)
            report.failed += 1
            state.failed(notice, error)
            log.warning("alerts: %s failed (%s); trying again next pass", notify.where(notice.channel), error)
        else:
            report.sent += 1
            state.sent(notice, now)
    return report
