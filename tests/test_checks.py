"""Automatic checks of a run's outputs against the task's reference (issue 11 item 5):
the four checks, their validation at run creation, and the real worker storing
the results with the success; a plain job's success asks nothing more."""

import asyncio

import pytest

from eval.evaluation.errors import InvalidInput
from eval.evaluation.runs import finishing
from eval.evaluation.runs import output_checks as checks
from eval.evaluation.runs import report as run_report
from eval.jobs import claims, create
from eval.models import JobStatus, LLMJob, Run
from eval.worker.service import serve


def run_checks(kinds, output, reference, pattern=None):
    chosen = [{"type": kind, **({"pattern": pattern} if pattern else {})} for kind in kinds]
    return checks.run_checks(chosen, output, reference)


def test_it_checks_exact_after_stripping_whitespace():
    assert run_checks(["exact"], "  Paris\n", "Paris") == {"exact": True}
    assert run_checks(["exact"], "Paris, France", "Paris") == {"exact": False}
    assert run_checks(["exact"], "paris", "Paris") == {"exact": False}


def test_it_checks_contains():
    assert run_checks(["contains"], "The capital is Paris.", " Paris ") == {"contains": True}
    assert run_checks(["contains"], "The capital is Lyon.", "Paris") == {"contains": False}


def test_it_checks_a_regex_pattern_or_the_reference_as_one():
    assert run_checks(["regex"], "answer: 42", "", pattern=r"\b4\d\b") == {"regex": True}
    assert run_checks(["regex"], "answer: 17", "", pattern=r"\b4\d\b") == {"regex": False}
    assert run_checks(["regex"], "it is 1999", r"19\d\d") == {"regex": True}
    # A reference that is no valid regex (or too long for one) fails, it does not crash.
    assert run_checks(["regex"], "(unclosed", "(unclosed") == {"regex": False}
    assert run_checks(["regex"], "a" * 600, "a" * 600) == {"regex": False}


def test_it_checks_json_valid():
    assert run_checks(["json_valid"], ' {"a": [1, 2]}\n', "") == {"json_valid": True}
    assert run_checks(["json_valid"], "```json\n{}\n```", "") == {"json_valid": False}
    assert run_checks(["json_valid"], "{'a': 1}", "") == {"json_valid": False}


def test_it_leaves_out_checks_that_need_a_reference_the_task_has_not():
    assert run_checks(["exact", "contains", "regex", "json_valid"], "{}", "") == {"json_valid": True}
    assert run_checks(["exact", "contains"], "x", None) == {}


def test_it_validates_the_checks_of_a_run():
    assert checks.validate(None) == []
    assert checks.validate([{"type": "exact"}, {"type": "regex", "pattern": "^a"}]) == [
        {"type": "exact"},
        {"type": "regex", "pattern": "^a"},
    ]
    refused = [
        "exact",
        [{"type": "fuzzy"}],
        [{"type": "exact"}, {"type": "exact"}],
        [{"type": "regex", "pattern": "(unclosed"}],
        [{"type": "regex", "pattern": "a" * (checks.MAX_PATTERN + 1)}],
        [{"type": "contains", "pattern": "x"}],
        [{"type": "exact", "flags": "i"}],
    ]
    for bad in refused:
        with pytest.raises(InvalidInput) as caught:
            checks.validate(bad)
        assert caught.value.field == "checks"


@pytest.mark.django_db(transaction=True)
def test_it_stores_check_results_with_the_success_through_the_real_worker(fast_jobs, make_task):
    run = Run.objects.create(
        name="checked",
        provider="echo",
        model="echo",
        status=Run.Status.RUNNING,
        checks=[
            {"type": "exact"},
            {"type": "contains"},
            {"type": "regex", "pattern": r"^\w+ \w+$"},
            {"type": "json_valid"},
        ],
    )
    matching = make_task(prompt="hello world", reference="hello world")
    other = make_task(prompt="goodbye cruel world", reference="hello")
    jobs = []
    for task in (matching, other):
        job, _ = create.create_job(task=task, provider="echo", model="echo")
        LLMJob.objects.filter(pk=job.pk).update(run=run, priority=LLMJob.Priority.BULK)
        jobs.append(job)
    plain, _ = create.create_job(task=matching, provider="echo", model="echo")
    asyncio.run(serve(once=True))
    first, second, plain = (LLMJob.objects.get(pk=job.pk) for job in (*jobs, plain))
    assert first.status == second.status == plain.status == JobStatus.SUCCEEDED
    assert first.check_results == {"exact": True, "contains": True, "regex": True, "json_valid": False}
    assert second.check_results == {"exact": False, "contains": False, "regex": False, "json_valid": False}
    assert plain.check_results == {}
    # The run's JSON counts them per check ("exact", "contains" and "regex" are lookup names too).
    counted = {check["type"]: (check["passed"], check["failed"]) for check in run_report.checks_json(run)}
    assert counted == {"exact": (1, 1), "contains": (1, 1), "regex": (1, 1), "json_valid": (0, 2)}


@pytest.mark.django_db(transaction=True)
def test_it_asks_nothing_more_of_a_plain_job_when_it_succeeds(task):
    """The hot path: the claim says the job has no run, so its success is written as before."""
    job, _ = create.create_job(task=task, provider="echo", model="echo")
    (claimed,) = claims.claim_next("w-1", 1)
    assert (claimed.id, claimed.kind, claimed.run_id) == (job.pk, "generate", None)
    assert not finishing.needs_finishing(claimed)
    run = Run.objects.create(name="r", provider="echo", model="echo")
    job2, _ = create.create_job(task=task, provider="echo", model="echo")
    LLMJob.objects.filter(pk=job2.pk).update(run=run)
    (claimed2,) = claims.claim_next("w-1", 1)
    assert claimed2.run_id == run.pk and finishing.needs_finishing(claimed2)
