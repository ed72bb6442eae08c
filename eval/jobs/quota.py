"""Per-user limits, all of them: the job caps (JOB_CREATE_RATE,
MAX_QUEUED_JOBS_PER_USER), the daily budget (USER_DAILY_BUDGET_USD; 0 = off)
and a bulk launch's cost checks (BULK_CONFIRM_COST_USD, a run's max_cost_usd).
Views, commands, the daemon and the job builder ask here; refusals are domain
errors (eval/jobs/errors.py) that the API maps to its codes (eval/api/errors.py).

The caps. The user's own job rows are the counter: jobs created in the last
window and jobs still queued; no extra table, no per-process cache, so it holds
across gunicorn processes and web VMs. A count and the insert it admits must not
interleave with another create of the same user's, or a burst gets through on
stale counts: 30 parallel creates under a cap of 5 made 8 jobs (gunicorn
defaults) and 18 (4 x 8 threads). So the check runs inside the creating
transaction (create_job's ``admit``) after taking the user's lock. A run's jobs
do not count: runs answer to the budget.

The budget. Every spend reserves its estimate in the user's DailySpend row for
today, in the transaction that creates what spends: a single job or a retry as
it is inserted (reserve_job, from eval/jobs/create.py), a run, a schedule's
firing or a judge run as it moves to running (reserve, from the run services;
a run's jobs, judge jobs included, are covered by their run's reservation).
The check is ONE conditional UPDATE (``reserved + estimate <= budget``) taken
under the user's row lock: the database decides, so parallel requests (threads,
processes, web VMs) can never overspend. The job or run keeps what it reserved
(``reserved_usd``, ``reserved_on``); once it has ended, settle() replaces the
estimate with what it actually cost on the reservation's day (the daemon's pass,
and every reservation of the same user first). While a budget is set, a model
without a price is refused: it is never counted as free.
"""

import math
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from eval.jobs import states
from eval.jobs.errors import BudgetExceeded, ConfirmCost, InvalidJob, MaxCostExceeded, RateLimited
from eval.jobs.validation import sent_chars
from eval.models import DailySpend, LLMJob, Run
from eval.providers import catalogue, pricing

QUEUED_CAP_RETRY_AFTER_S = 10
# Amounts are whole micro-dollars. SQLite keeps a decimal column as a float, so a
# sum of them drifts (39 x 0.05 is 1.9500000000000002 there): the budget's check
# allows half a micro-dollar, far above that drift and below any real amount.
SLACK = Decimal("0.0000005")


def lock_user(user):
    """Hold ``user``'s lock until the current transaction ends: every job create
    and every reservation of one user pass one at a time.

    PostgreSQL: a FOR NO KEY UPDATE lock on the user's row. It does not conflict
    with the KEY SHARE locks that rows referencing the user take (the new job's
    own foreign key among them), nor with readers. READ COMMITTED gives each later
    statement a fresh snapshot, so what follows sees every row committed before
    the lock was ours.

    SQLite: one writer at a time, and every transaction here begins with BEGIN
    IMMEDIATE (settings: ``transaction_mode``), so the transaction already holds
    the database's write lock."""
    if not connection.in_atomic_block:
        raise RuntimeError("a per-user lock needs the creating transaction")
    if connection.features.has_select_for_update:
        users = get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk)
        list(users.values_list("pk", flat=True))


# --- the caps ----------------------------------------------------------------------------


def check_job_creation(user):
    """Raise RateLimited (with Retry-After) when ``user`` may not create a job now.
    Call it inside the transaction that inserts the job: it locks, then counts."""
    lock_user(user)
    count, seconds = settings.JOB_CREATE_RATE
    now = timezone.now()
    since = now - timedelta(seconds=seconds)
    recent = list(
        LLMJob.objects.filter(created_by=user, created_at__gte=since, run__isnull=True)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:count]
    )
    if len(recent) >= count:
        # The window frees a slot when the oldest of the last `count` jobs ages out.
        wait = max(1, math.ceil((recent[-1] + timedelta(seconds=seconds) - now).total_seconds()))
        raise RateLimited(f"at most {count} jobs per {seconds} s; try again in {wait} s", retry_after=wait)
    queued = LLMJob.objects.filter(created_by=user, status=states.QUEUED, run__isnull=True).count()
    if queued >= settings.MAX_QUEUED_JOBS_PER_USER:
        raise RateLimited(
            f"you already have {queued} queued jobs (the limit is {settings.MAX_QUEUED_JOBS_PER_USER}); "
            "wait for some to start",
            retry_after=QUEUED_CAP_RETRY_AFTER_S,
        )


# --- the daily budget ----------------------------------------------------------------------


def budget():
    """Today's budget per user as a Decimal, or None when budgets are off."""
    value = settings.USER_DAILY_BUDGET_USD
    return Decimal(str(value)) if value else None


def today():
    return timezone.localdate()


def check_priced(entry, model):
    """While a budget is set, a model with no price cannot be launched (the echo
    demo models are free unless MODEL_PRICES prices them)."""
    if budget() is not None and entry is not None and pricing.price(entry, model) is None:
        raise InvalidJob(
            f"no price is known for {entry.name} model {model!r} and a daily budget is set: "
            "add it to MODEL_PRICES to launch it",
            field="model",
        )


def check_bulk_cost(cost, *, max_cost_usd=None, confirm_cost_usd=None, firing=False):
    """A bulk launch's (a run's) own limits, before the budget: over
    BULK_CONFIRM_COST_USD it needs ``confirm_cost_usd`` >= its estimate (not a
    schedule's ``firing``: nobody is there to confirm it), and never over the
    run's ``max_cost_usd``. Raises ConfirmCost or MaxCostExceeded."""
    threshold = Decimal(str(settings.BULK_CONFIRM_COST_USD))
    confirmed = firing or (confirm_cost_usd is not None and Decimal(confirm_cost_usd) >= cost)
    if cost > threshold and not confirmed:
        raise ConfirmCost(cost, threshold)
    if max_cost_usd is not None and cost > max_cost_usd:
        raise MaxCostExceeded(cost, max_cost_usd)


def reserve(user, amount):
    """Reserve ``amount`` of ``user``'s budget today, or raise BudgetExceeded.
    Returns the day reserved on, or None when nothing was reserved (budgets off,
    no user: a command, nothing to pay). Call it inside the transaction that
    creates what spends: a refusal after it rolls the reservation back too."""
    limit = budget()
    amount = Decimal(amount)
    if limit is None or user is None or amount <= 0:
        return None
    lock_user(user)
    settle(user_id=user.pk)  # what ended since counts at its real cost first
    day = today()
    if amount > limit:
        raise BudgetExceeded(amount, left=left_today(user))
    DailySpend.objects.bulk_create([DailySpend(user=user, day=day)], ignore_conflicts=True)
    row = DailySpend.objects.filter(user=user, day=day, reserved_usd__lte=limit - amount + SLACK)
    if not row.update(reserved_usd=F("reserved_usd") + amount):
        raise BudgetExceeded(amount, left=left_today(user))
    return day


def reserve_job(job):
    """The reservation of a new single job (a launch or a retry), before it is
    inserted in the creating transaction: sets its ``reserved_usd`` and
    ``reserved_on``. ``job.params`` are clean; a run's jobs are the run's."""
    if budget() is None or job.created_by_id is None or job.run_id is not None:
        return
    entry = catalogue.get(job.provider)
    check_priced(entry, job.model)
    amount = pricing.estimate(entry, job.model, [sent_chars(job)], job.params["max_tokens"]).usd
    job.reserved_on = reserve(job.created_by, amount)
    if job.reserved_on is not None:
        job.reserved_usd = amount


def reserved_today(user):
    value = DailySpend.objects.filter(user=user, day=today()).values_list("reserved_usd", flat=True).first()
    return value or Decimal("0")


def left_today(user):
    limit = budget()
    return None if limit is None else max(Decimal("0"), limit - reserved_today(user))


def summary(user):
    """GET /api/budget (a read: nothing is settled here): what the user's spends
    have committed today (what ended at its real cost, even before the daemon
    settles it), what their jobs actually cost today, the budget and what is left
    (None when budgets are off)."""
    day = today()
    start = timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time()))
    spent = LLMJob.objects.filter(created_by=user, created_at__gte=start).aggregate(total=Sum("cost_usd"))["total"]
    committed = reserved_today(user) + sum(_corrections(user_id=user.pk).get((user.pk, day), {}).values())
    limit = budget()
    return {
        "day": day.isoformat(),
        "reserved_usd": float(committed),
        "spent_usd": float(spent or 0),
        "budget_usd": None if limit is None else float(limit),
        "left_usd": None if limit is None else float(max(Decimal("0"), limit - committed)),
    }


# --- settling what ended ---------------------------------------------------------------------


def _ended_jobs(user_id, limit):
    jobs = LLMJob.objects.filter(reserved_usd__isnull=False, status__in=states.TERMINAL)
    jobs = jobs if user_id is None else jobs.filter(created_by_id=user_id)
    return jobs.order_by("pk").values_list("pk", "created_by_id", "reserved_on", "reserved_usd", "cost_usd")[:limit]


def _ended_runs(user_id, limit):
    """(pk, user, day, reserved, cost) of ended runs still holding a reservation
    and with no live job left (a cancelled run's running jobs still spend)."""
    runs = Run.objects.filter(reserved_usd__isnull=False, status__in=Run.ENDED)
    runs = list((runs if user_id is None else runs.filter(created_by_id=user_id)).order_by("pk")[:limit])
    ids = [run.pk for run in runs]
    live = set(LLMJob.objects.filter(run_id__in=ids, status__in=states.CANCELLABLE).values_list("run_id", flat=True))
    spent = LLMJob.objects.filter(run_id__in=ids).values("run_id").annotate(total=Sum("cost_usd"))
    costs = dict(spent.values_list("run_id", "total"))
    return [
        (run.pk, run.created_by_id, run.reserved_on, run.reserved_usd, costs.get(run.pk))
        for run in runs
        if run.pk not in live
    ]


def _corrections(user_id=None, limit=500):
    """{(user, day): {(model, pk): actual - reserved}} of the ended reservations (a read)."""
    found = defaultdict(dict)
    for model, rows in ((LLMJob, _ended_jobs(user_id, limit)), (Run, _ended_runs(user_id, limit))):
        for pk, owner, day, reserved, cost in rows:
            found[(owner, day)][(model, pk, reserved)] = (cost or Decimal("0")) - reserved
    return found


def settle(user_id=None, limit=500):
    """Replace the reservations of ended jobs and runs (``user_id``'s, or
    everyone's: the daemon's pass) with what they cost, on the day each was
    reserved. Each is cleared by a conditional UPDATE (only the settler that
    clears it charges the difference). Every caller locks in one order, so two
    settlers cannot deadlock: by (user, day), that day's jobs then runs (by id),
    and the DailySpend rows last. Returns how many reservations were settled."""
    settled = 0
    with transaction.atomic():
        charges = defaultdict(Decimal)
        for (owner, day), items in sorted(_corrections(user_id, limit).items(), key=_lock_order):
            for (model, pk, reserved), delta in items.items():
                if model.objects.filter(pk=pk, reserved_usd=reserved).update(reserved_usd=None):
                    charges[(owner, day)] += delta
                    settled += 1
        for (owner, day), delta in sorted(charges.items(), key=_lock_order):
            DailySpend.objects.filter(user_id=owner, day=day).update(reserved_usd=F("reserved_usd") + delta)
    return settled


def _lock_order(item):
    (owner, day), _ = item
    return (owner or 0, day)  # a deleted user's rows (owner None) still give their reservation up
