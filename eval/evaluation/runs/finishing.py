"""What a job's successful model call turns into, beyond the output itself
(the worker's success path asks here, on a database thread, before its final write).

- A plain generate job with no run: nothing; ``needs_finishing`` says so
  without a query, and the worker writes its success as it always did.
- A generate job of a run: the run's automatic checks against the task's
  reference, written with the success in the same statement; once it is
  written, in the same transaction, the judge jobs this output makes possible.
- A judge job: its answer parsed and validated. Valid -> the success, and in
  the same transaction one Judgement pinning what was judged and by whom.
  Malformed -> the job fails with ``bad_judge_output``, its raw text kept.
"""

import dataclasses
import functools
from dataclasses import dataclass

from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews.judgements import MAX_NOTES
from eval.evaluation.reviews.rubrics import clean_answers, rubric_for_source
from eval.evaluation.runs import judges
from eval.evaluation.runs import output_checks as checks
from eval.models import Judgement, LLMJob

BAD_JUDGE_OUTPUT = "bad_judge_output"


@dataclass(frozen=True)
class Failure:
    """The call succeeded but the job fails (a judge's answer not as asked)."""

    code: str
    message: str


def needs_finishing(job):
    """Whether ``job`` (a ClaimedJob) needs more than its output written. No query."""
    return job.kind == LLMJob.Kind.JUDGE or job.run_id is not None


def finish(job, success):
    """What to write for ``job``'s successful call: ``success`` completed
    (a ``endings.Success``), or a Failure."""
    if job.kind == LLMJob.Kind.JUDGE:
        return _judge_answer(job, success)
    return _run_output(job, success)


def _run_output(job, success):
    row = LLMJob.objects.filter(pk=job.id).values("run__checks", "task__reference").first()
    run_checks = (row or {}).get("run__checks") or []
    results = checks.run_checks(run_checks, success.output, row["task__reference"]) if run_checks else None
    return _with(
        success,
        check_results=results,
        on_written=functools.partial(judges.on_output, job.run_id, job.task_id),
    )


def _judge_answer(job, success):
    judge_job = LLMJob.objects.select_related("run__rubric", "task", "judged_a", "judged_b").get(pk=job.id)
    pairwise = judge_job.judged_b_id is not None
    try:
        answer = judges.parse_answer(success.output, pairwise=pairwise)
        rubric = judges.rubric_of(judge_job.run, judge_job.task) if judge_job.run_id else None
        rubric = rubric or rubric_for_source(judge_job.task.source)
        answers = clean_answers(rubric, answer["scores"], enforce_required=False)
    except judges.BadAnswer as error:
        return Failure(BAD_JUDGE_OUTPUT, f"The judge's answer was not the JSON asked for: {error}")
    except InvalidInput as error:
        return Failure(BAD_JUDGE_OUTPUT, f"The judge's scores do not fit the rubric: {error.message}")
    judgement = _judgement(judge_job, rubric, answer, answers)
    return _with(success, on_written=functools.partial(judgement.save, force_insert=True))


def _judgement(judge_job, rubric, answer, answers):
    """One judgement by ``judge_job``: job_a/job_b are the judged jobs in the order shown."""
    judged_a, judged_b = judge_job.judged_a, judge_job.judged_b
    return Judgement(
        kind=Judgement.Kind.PAIRWISE if judged_b is not None else Judgement.Kind.SCORE,
        task=judge_job.task,
        judge_job=judge_job,
        job_a=judged_a,
        job_b=judged_b,
        output_hash_a=judged_a.output_hash,
        output_hash_b=judged_b.output_hash if judged_b is not None else "",
        prompt_hash=judge_job.prompt_hash,
        rubric=rubric,
        answers=answers,
        verdict=answer["verdict"] or "",
        shown_left=judged_a,
        blind=True,  # the prompt names no model, provider or job
        notes=answer["reason"][:MAX_NOTES],
        judge_provider=judge_job.provider,
        judge_model=judge_job.model,
        judge_params=judge_job.params,
        judge_prompt_version=judges.prompt_version(judge_job.prompt_text),
    )


def _with(success, **fields):
    return dataclasses.replace(success, **fields)
