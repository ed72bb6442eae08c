"""The per-user daily budget (USER_DAILY_BUDGET_USD; 0 = off).

A launch reserves its estimate in the user's DailySpend row for today with ONE
conditional UPDATE (``reserved + estimate <= budget``): the database decides,
so parallel launches (threads, processes, web VMs) can never overspend. On
PostgreSQL a second UPDATE of the same row waits for the first to commit and
then re-checks the condition against the new value; on SQLite writers are
serialised. The row is created first (ignore_conflicts), so the UPDATE always
has a row to match.
"""

from decimal import Decimal

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from eval.evaluation.errors import BudgetExceeded
from eval.models import DailySpend, LLMJob


def budget():
    """Today's budget per user as a Decimal, or None when budgets are off."""
    value = settings.USER_DAILY_BUDGET_USD
    return Decimal(str(value)) if value else None


def today():
    return timezone.localdate()


def _row(user):
    DailySpend.objects.bulk_create([DailySpend(user=user, day=today())], ignore_conflicts=True)
    return DailySpend.objects.filter(user=user, day=today())


def reserve(user, amount):
    """Reserve ``amount`` of ``user``'s budget today, or raise BudgetExceeded.
    Free launches and callers without a user (commands) are not budgeted."""
    limit = budget()
    amount = Decimal(amount)
    if limit is None or user is None or amount <= 0:
        return
    if amount > limit:
        raise BudgetExceeded(amount, left=left_today(user))
    changed = _row(user).filter(reserved_usd__lte=limit - amount).update(reserved_usd=F("reserved_usd") + amount)
    if not changed:
        raise BudgetExceeded(amount, left=left_today(user))


def release(user, amount):
    """Give back a reservation whose launch did not happen."""
    amount = Decimal(amount)
    if budget() is None or user is None or amount <= 0:
        return
    _row(user).update(reserved_usd=F("reserved_usd") - amount)


def reserved_today(user):
    value = DailySpend.objects.filter(user=user, day=today()).values_list("reserved_usd", flat=True).first()
    return value or Decimal("0")


def left_today(user):
    limit = budget()
    return None if limit is None else max(Decimal("0"), limit - reserved_today(user))


def summary(user):
    """GET /api/budget: what the user's launches reserved today, what their jobs
    actually cost today, the budget and what is left (None when budgets are off)."""
    start = timezone.make_aware(timezone.datetime.combine(today(), timezone.datetime.min.time()))
    spent = LLMJob.objects.filter(created_by=user, created_at__gte=start).aggregate(total=Sum("cost_usd"))["total"]
    limit = budget()
    return {
        "day": today().isoformat(),
        "reserved_usd": float(reserved_today(user)),
        "spent_usd": float(spent or 0),
        "budget_usd": None if limit is None else float(limit),
        "left_usd": None if limit is None else float(left_today(user)),
    }
