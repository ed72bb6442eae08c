"""Evaluation runs: create, launch (now, or as a schedule's firing), cancel,
and the status that follows their jobs (DESIGN "Evaluation"). Views, commands
and the daemon's schedule step all come here.

A launch: select the tasks, estimate the cost (costs.py), refuse above
BULK_CONFIRM_COST_USD without a confirmation (not for a schedule's firing),
above the run's max_cost_usd, or above its creator's daily budget
(eval/jobs/quota.py, which every spend reserves through: one conditional
UPDATE, in the same transaction that moves the run to running, so two launches
of one run cannot both go), then queue the jobs in batches
(eval/jobs/create.create_many): bulk priority, run=the run. The run holds the
reservation for all its jobs (a judge run's too) until it has ended; then
quota.settle corrects it to what they cost.
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from eval.evaluation.errors import Conflict
from eval.evaluation.runs import costs, cron, judges
from eval.evaluation.runs import input as run_input
from eval.evaluation.runs import status as run_status
from eval.evaluation.runs.report import run_json  # noqa: F401  (runs.run_json is the interface)
from eval.jobs import create, prompt_templates, quota, transitions
from eval.jobs.errors import JobError
from eval.models import Run
from eval.providers import catalogue
from eval.sync.datasets import latest_version

# What a schedule's firing (a child run) takes from its scheduled run.
COPIED = ("name", "kind", "provider", "model", "params", "selection", "checks", "created_by", "max_cost_usd")
COPIED += ("rubric", "compare_a", "compare_b", "score_of", "swap", "template")


def _bump(**values):
    now = timezone.now()
    return {**values, "version": F("version") + 1, "updated_at": now}


def create_run(*, user, data, batch_size=create.BULK_BATCH):
    """A run from a POST /api/runs body: launched at once, or left ``scheduled``
    with its next firing. A refused launch leaves no run behind."""
    fields = run_input.clean_run(data)
    confirm = fields.pop("confirm_cost_usd")
    run = Run.objects.create(
        created_by=user,
        status=Run.Status.SCHEDULED,
        dataset_version=latest_version((fields.get("selection") or {}).get("source")),
        **fields,
    )
    if run.schedule:
        run.next_run_at = cron.next_firing(run.schedule, timezone.now())
        run.save(update_fields=["next_run_at"])
        return run
    try:
        return launch(run, confirm_cost_usd=confirm, batch_size=batch_size)
    except JobError:
        run.delete()
        raise


def child_of(parent, *, by=None):
    """A new run with a scheduled run's settings (parent = it), not launched."""
    fields = {name: getattr(parent, name) for name in COPIED}
    if by is not None:
        fields["created_by"] = by
    version = latest_version((parent.selection or {}).get("source"))
    return Run.objects.create(**fields, parent=parent, status=Run.Status.SCHEDULED, dataset_version=version)


def launch_now(parent, *, by, confirm_cost_usd=None):
    """ "Run now" for a scheduled run: a child run launched at once (removed if refused)."""
    if parent.status != Run.Status.SCHEDULED or not parent.schedule:
        raise Conflict("only a scheduled run can be launched now")
    child = child_of(parent, by=by)
    try:
        return launch(child, confirm_cost_usd=confirm_cost_usd)
    except JobError:
        child.delete()
        raise


def launch(run, *, confirm_cost_usd=None, firing=False, batch_size=create.BULK_BATCH):
    """Launch a ``scheduled`` run: its jobs queued, status running. Raises
    ConfirmCost, BudgetExceeded (also over max_cost_usd), Conflict, InvalidInput
    (also a model with no price while a budget is set). The run's creator's
    budget is charged ("run now" makes a child created by the caller)."""
    if run.status != Run.Status.SCHEDULED:
        raise Conflict(f"the run is already {run.status}")
    found, rows, skipped = costs.estimate(run)
    cost = found.usd
    quota.check_priced(catalogue.get(run.provider), run.model)
    quota.check_bulk_cost(cost, max_cost_usd=run.max_cost_usd, confirm_cost_usd=confirm_cost_usd, firing=firing)
    # Every task's messages, rendered before anything is charged or queued (a template
    # that fails on one task refuses the launch, naming the task).
    messages = None
    if run.kind != Run.Kind.JUDGE:
        system = run.params.get("system", "")
        messages = prompt_templates.messages_for_tasks((row[0] for row in rows), run.template, system)
    with transaction.atomic():
        day = quota.reserve(run.created_by, cost)
        held = {"reserved_usd": cost, "reserved_on": day} if day is not None else {}
        moved = Run.objects.filter(pk=run.pk, status=Run.Status.SCHEDULED).update(
            **_bump(
                status=Run.Status.RUNNING,
                estimated_cost_usd=costs.shown_estimate(found),
                launched_at=timezone.now(),
                **held,
            )
        )
        if not moved:
            raise Conflict("the run was launched or cancelled meanwhile")
    run.refresh_from_db()
    if run.kind == Run.Kind.JUDGE:
        judges.create_judge_jobs(run)
    else:
        create.create_many(
            tasks=((task_id, prompt_hash) for task_id, prompt_hash, _ in rows),
            provider=run.provider,
            model=run.model,
            params=run.params,
            created_by=run.created_by,
            run=run,
            batch_size=batch_size,
            template=run.template,
            messages=messages,
        )
        refresh_status(run)
    run.skipped = skipped
    return run


def cancel(run, *, by):
    """Stop a run: queued jobs cancelled in one UPDATE, running ones asked to
    stop; a scheduled run stops firing. Its reservation is settled to what its
    jobs cost once none is running (now, or when the last one stops)."""
    if run.status in Run.ENDED:
        raise Conflict(f"the run is already {run.status}")
    who = by.get_username() if by is not None else "an operator"
    transitions.cancel_queued_of_run(run.pk, by=who)
    Run.objects.filter(pk=run.pk).update(
        **_bump(status=Run.Status.CANCELLED, next_run_at=None, finished_at=timezone.now())
    )
    if run.reserved_usd is not None:
        quota.settle(user_id=run.created_by_id)
    run.refresh_from_db()
    return run


def finish_ended(limit=500):
    """Move running runs whose jobs have all ended to done (the daemon, each
    pass; a read only shows them done: status.shown). Returns how many finished."""
    finished = 0
    for run in Run.objects.filter(status=Run.Status.RUNNING).order_by("id")[:limit]:
        finished += refresh_status(run).status == Run.Status.DONE
    return finished


def refresh_status(run):
    """Store running -> done once the run has ended (status.ended). Only the daemon's
    pass and a launch that queued nothing call it: a read shows status.shown instead."""
    if not run_status.ended(run):
        return run
    if Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        **_bump(status=Run.Status.DONE, finished_at=timezone.now())
    ):
        run.refresh_from_db()
    return run
