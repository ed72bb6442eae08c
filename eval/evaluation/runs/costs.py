"""What a run costs: its estimate at launch and what its jobs have cost so far.
The arithmetic is eval/providers/pricing.py's; this module only says which
calls a run makes (DESIGN "Evaluation", cost control)."""

from django.conf import settings
from django.db.models import Sum

from eval.evaluation.runs import input as run_input
from eval.models import LLMJob, Run
from eval.providers import catalogue, pricing


def dry_run(data):
    """What POST /api/runs with body ``data`` would launch now, creating nothing:
    (Estimate, tasks or None for a judge run, skipped). Refuses what the create
    call refuses (InvalidInput)."""
    fields = run_input.clean_run(data)
    fields.pop("confirm_cost_usd")
    found, rows, skipped = estimate(Run(status=Run.Status.SCHEDULED, **fields))
    return found, None if rows is None else len(rows), skipped


def estimate(run):
    """(Estimate, rows, skipped) of launching ``run`` now: rows are the
    (task_id, prompt_hash, chars) a generate run queues, skipped the
    (task_id, reason) it cannot (a judge run: its jobs are made as outputs come)."""
    entry = catalogue.get(run.provider)
    if run.kind == Run.Kind.JUDGE:
        return _judge_estimate(entry, run), None, []
    if entry is None:
        raise run_input.InvalidInput(f"unknown or unconfigured provider {run.provider!r}", field="provider")
    system = run.params.get("system") or ""
    rows, skipped = run_input.launchable(run.selection, system, settings.MAX_PROMPT_CHARS)
    found = pricing.estimate(entry, run.model, (chars for _, _, chars in rows), run.params["max_tokens"])
    return found, rows, skipped


def _judge_estimate(entry, run):
    """Judge jobs judge the outputs of the judged runs' tasks: per task, the
    prompt and each output (bounded by the judged runs' max_tokens) in, the
    judge's max_tokens out; twice with swap."""
    judged = [r for r in (run.compare_a, run.compare_b, run.score_of) if r is not None]
    if entry is None or not judged:
        return pricing.NO_CALLS
    outputs_chars = sum(r.params.get("max_tokens", 0) for r in judged) * pricing.CHARS_PER_TOKEN
    rows, _ = run_input.launchable(judged[0].selection, "", settings.MAX_PROMPT_CHARS)
    per_task = [chars + outputs_chars for _, _, chars in rows] * (2 if run.swap and run.compare_a_id else 1)
    return pricing.estimate(entry, run.model, per_task, run.params["max_tokens"])


def actual(run_id):
    """What a run's jobs have cost so far (the worker writes each job's cost), or
    None while no job of it has a known cost (an unpriced model, imported outputs):
    no cost is not $0."""
    value = LLMJob.objects.filter(run_id=run_id).aggregate(total=Sum("cost_usd"))["total"]
    return None if value is None else pricing.usd(value)


def shown_estimate(found):
    """The estimate a run records and shows: None for a model with no known price
    (counted as free against budgets, but not shown as $0)."""
    return None if found.price is None else found.usd
