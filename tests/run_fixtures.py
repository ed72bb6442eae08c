"""Runs with settled jobs written straight into the table, for the tests of
what is read from them (a run's work, comparisons, gates). The job engine's
own paths are tested elsewhere; the demo test runs the real worker."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from eval.jobs.fields import output_hash
from eval.models import LLMJob, Run


def make_run(creator, *, checks=("exact",), name="run", model="echo", status=Run.Status.DONE, **fields):
    return Run.objects.create(
        created_by=creator,
        name=name,
        provider="echo",
        model=model,
        params={"max_tokens": 100},
        checks=[{"type": check} for check in checks],
        status=status,
        **fields,
    )


def settle(run, task, output="", *, status="succeeded", checks=None, tokens=(3, 4), cost="0.001", seconds=1, **more):
    """One ended job of ``run`` for ``task``; ``checks`` its check results ({"exact": True})."""
    now = timezone.now()
    more.setdefault("prompt_hash", task.prompt_hash)
    return LLMJob.objects.create(
        task=task,
        run=run,
        provider=run.provider,
        model=run.model,
        params=run.params,
        priority=LLMJob.Priority.BULK,
        created_by=run.created_by,
        status=status,
        progress=100,
        output=output,
        output_hash=output_hash(output) if output else "",
        stop_reason="end_turn" if status == "succeeded" else "",
        error_code="" if status == "succeeded" else "server_error",
        error_message="" if status == "succeeded" else "the server failed",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=Decimal(cost),
        check_results=checks or {},
        available_at=now,
        **{"started_at": now - timedelta(seconds=seconds), "finished_at": now, **more},
    )
