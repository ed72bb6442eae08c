"""A run as JSON (DESIGN "Run JSON"), and what its page's poll tag is made of.

The ETag source is the run row's ``version`` plus the newest ``updated_at`` of
its jobs, read through the index llmjob_run_updated_idx (one backward index
step, whatever the run's size). Every job change stamps ``updated_at``, so the
newest one moves whenever a count, a cost or a status could. No hot counter
row: 1,000 workers finishing jobs of one run never queue on one row.
"""

from django.db import connection
from django.db.models import Count, Q

from eval.evaluation.runs import costs
from eval.evaluation.runs import status as run_status
from eval.jobs import states
from eval.models import DatasetVersion, LLMJob, Run

RECENT_FAILURES = 10

_STATE_SQL = """
SELECT r.version, (SELECT MAX(j.updated_at) FROM eval_llmjob j WHERE j.run_id = r.id)
FROM eval_run r WHERE r.id = %s
"""


def poll_state(run_id):
    """(run version, newest job change) or None when there is no such run. One statement."""
    with connection.cursor() as cursor:
        cursor.execute(_STATE_SQL, [run_id])
        row = cursor.fetchone()
    if row is None:
        return None
    newest = row[1]
    if newest is not None and not isinstance(newest, str):
        newest = newest.isoformat()
    return int(row[0]), newest or ""


def counts(run_id):
    """Jobs per status (all five), through llmjob_run_status_idx."""
    found = dict(
        LLMJob.objects.filter(run_id=run_id)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {status: found.get(status, 0) for status in states.ALL}


def totals(job_counts):
    """All the run's jobs, those still to end, those ended: the page reads these
    and keeps no list of which statuses are which."""
    live = sum(job_counts[s] for s in states.LIVE)
    ended = sum(job_counts[s] for s in states.TERMINAL)
    return {"jobs": live + ended, "live": live, "ended": ended}


def progress(job_counts):
    counted = totals(job_counts)
    return int(100 * counted["ended"] / counted["jobs"]) if counted["jobs"] else 0


def _money(value):
    return None if value is None else float(value)


def checks_json(run):
    """Each check of the run with its passes and failures, counted in one statement.
    The key lookups end in ``__exact``: "exact", "contains" and "regex" are check
    names but also lookup names (``check_results__contains`` would be the lookup)."""
    counts = {}
    for n, check in enumerate(run.checks):
        for outcome in (True, False):
            counts[f"c{n}_{outcome}"] = Count("pk", filter=Q(**{f"check_results__{check['type']}__exact": outcome}))
    totals = LLMJob.objects.filter(run_id=run.pk).aggregate(**counts) if counts else {}
    return [
        {**check, "passed": totals[f"c{n}_True"], "failed": totals[f"c{n}_False"]} for n, check in enumerate(run.checks)
    ]


def judge_json(run):
    if run.kind != Run.Kind.JUDGE:
        return None
    rubric = run.rubric
    return {
        "rubric": None if rubric is None else {"id": rubric.pk, "name": rubric.name, "version": rubric.version},
        "compare": [run.compare_a_id, run.compare_b_id] if run.compare_a_id else None,
        "score": run.score_of_id,
        "swap": run.swap,
    }


def failures(run_id):
    rows = (
        LLMJob.objects.filter(run_id=run_id, status=states.FAILED)
        .order_by("-updated_at")
        .values("id", "task_id", "error_code", "error_message")[:RECENT_FAILURES]
    )
    return [
        {"job": str(r["id"]), "task": r["task_id"], "code": r["error_code"], "message": r["error_message"]}
        for r in rows
    ]


def dataset_json(run):
    """The version of its dataset the run was made with (null when its selection
    names no single dataset, or one never uploaded to), and whether the
    dataset has a newer version now."""
    version = run.dataset_version
    dataset = (run.selection or {}).get("source")
    if version is None or not dataset:
        return {"dataset_version": None, "dataset_changed": False}
    newer = DatasetVersion.objects.filter(dataset=dataset, number__gt=version.number).exists()
    return {"dataset_version": version.number, "dataset_changed": newer}


def run_json(run):
    job_counts = counts(run.pk)
    return {
        "id": run.pk,
        "name": run.name,
        "kind": run.kind,
        "provider": run.provider,
        "model": run.model,
        "params": run.params,
        "tasks": run.selection,
        "status": run_status.shown(run, job_counts),
        "counts": job_counts,
        "totals": totals(job_counts),
        "progress": progress(job_counts),
        "estimated_cost_usd": _money(run.estimated_cost_usd),
        "cost_usd": _money(costs.actual(run.pk)),
        "max_cost_usd": _money(run.max_cost_usd),
        "schedule": run.schedule or None,
        "next_run_at": run.next_run_at.isoformat() if run.next_run_at else None,
        "parent": run.parent_id,
        "created_by": run.created_by.get_username() if run.created_by_id else None,
        "created_at": run.created_at.isoformat(),
        "launched_at": run.launched_at.isoformat() if run.launched_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "checks": checks_json(run),
        "judge": judge_json(run),
        "failures": failures(run.pk),
        "refused_reason": run.refused_reason or None,
        "baseline": bool(run.baseline_of),
        "regression": run.regression or None,
        **dataset_json(run),
        "template": run.template_id,
        "template_name": str(run.template) if run.template_id else None,
    }
