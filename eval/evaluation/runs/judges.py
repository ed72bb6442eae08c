"""LLM judges (DESIGN "Evaluation"; issue 11 item 4): the judge jobs of a
judge run, the prompt they send, and the answer they must give.

A judge run names a judge model, a rubric, and either two generate runs to
compare or one to score. For each task where the outputs exist (compare: the
latest succeeded job of each run for that task; score: the latest of the
scored run) it gets one judge job, bulk priority, judging the outputs in a
random order (``judged_a`` is shown first, as "Answer A"); with ``swap`` a
second job judges them in the other order. Jobs are made at launch for the
outputs that exist then, and later as each output that completes a task
succeeds (``on_output``, called in the success's own transaction).

Never two judge jobs for one task (one pair of orders with ``swap``) in a
run: creation holds the judge run's row lock, and skips tasks it already has.

The prompt asks for strict JSON:
``{"verdict": "a"|"b"|"tie"|"both_bad", "scores": {question key: value}, "reason": "..."}``
(no verdict for a score). ``parse_answer`` accepts exactly that, with
surrounding whitespace or one ```json fence, nothing else.
"""

import json
import logging
import random
import re

from django.db import transaction
from django.db.models import Q

from eval.evaluation.reviews.rubrics import rubric_for_source
from eval.jobs import create
from eval.models import LLMJob, Run, Task

log = logging.getLogger(__name__)

# Pinned on every judgement (judge_prompt_version); bump it whenever the wording below changes.
PROMPT_VERSION = "judge-v1"
VERDICTS = ("a", "b", "tie", "both_bad")
BATCH = 500
_random = random.SystemRandom()


# --- the prompt ------------------------------------------------------------------------------

_INTRO = (
    "You are an impartial judge of answers to a task. Judge only what is written, under the rubric "
    "below; ignore the order the answers are shown in and their length as such."
)


def _questions_text(rubric):
    return json.dumps(rubric.questions, ensure_ascii=False)


def prompt_version(prompt_text):
    """The version a judge prompt was built with (its first line), else the current one."""
    first = (prompt_text or "").split("\n", 1)[0]
    return first[1:-1] if first.startswith("[judge-") and first.endswith("]") else PROMPT_VERSION


def build_prompt(task, rubric, answer_a, answer_b=None):
    """The judge's prompt for one answer (a score) or two (pairwise). The
    tagged blocks also let the echo-judge demo model read it."""
    pairwise = answer_b is not None
    parts = [
        f"[{PROMPT_VERSION}]",
        _INTRO,
        f"<task>\n{task.prompt}\n</task>",
        f"<reference>\n{task.reference or '(none)'}\n</reference>",
        f"<answer_a>\n{answer_a}\n</answer_a>",
    ]
    if pairwise:
        parts.append(f"<answer_b>\n{answer_b}\n</answer_b>")
    parts += [
        f"<guidelines>\n{rubric.guidelines}\n</guidelines>",
        f"<rubric_questions>\n{_questions_text(rubric)}\n</rubric_questions>",
        _reply_instructions(pairwise),
    ]
    return "\n\n".join(parts)


def _reply_instructions(pairwise):
    if pairwise:
        return (
            "Reply with ONLY one JSON object and nothing else:\n"
            '{"verdict": "a" | "b" | "tie" | "both_bad", "scores": {<question key>: <answer>}, '
            '"reason": "<one or two sentences>"}\n'
            '"verdict": "a" if Answer A is better, "b" if Answer B is better, "tie" if they are as good, '
            '"both_bad" if neither is acceptable. "scores": answers to the rubric questions for the '
            "better answer (Answer A on a tie), each of its question's type and scale; leave out what "
            "you cannot answer."
        )
    return (
        "Reply with ONLY one JSON object and nothing else:\n"
        '{"scores": {<question key>: <answer>}, "reason": "<one or two sentences>"}\n'
        '"scores": your answers to the rubric questions for Answer A, each of its question\'s type '
        "and scale."
    )


# --- the answer --------------------------------------------------------------------------------

_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*)\n```\Z", re.DOTALL)


class BadAnswer(ValueError):
    """The judge's answer is not the JSON asked for (the message says how)."""


def parse_answer(text, *, pairwise):
    """``{"verdict", "scores", "reason"}`` from a judge's raw answer, or BadAnswer."""
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced["body"].strip()
    try:
        answer = json.loads(body)
    except ValueError:
        raise BadAnswer("the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise BadAnswer("the answer is not a JSON object")
    verdict = answer.get("verdict")
    if pairwise and verdict not in VERDICTS:
        raise BadAnswer(f"verdict must be one of {', '.join(VERDICTS)}")
    scores = answer.get("scores", {})
    if scores is None:
        scores = {}
    if not isinstance(scores, dict):
        raise BadAnswer("scores must be an object")
    reason = answer.get("reason", "")
    if not isinstance(reason, str):
        raise BadAnswer("reason must be text")
    return {"verdict": verdict if pairwise else "", "scores": scores, "reason": reason}


# --- judge jobs --------------------------------------------------------------------------------


def rubric_of(run, task):
    """The rubric a judge run judges under (its own; else the task source's)."""
    return run.rubric if run.rubric_id else rubric_for_source(task.source)


def _latest_outputs(run_id, task_ids):
    """{task_id: job} of the latest succeeded, visible generate job of ``run_id`` per task."""
    jobs = LLMJob.objects.judgeable().filter(run_id=run_id).only("id", "task_id", "output", "output_hash", "created_at")
    if task_ids is not None:
        jobs = jobs.filter(task_id__in=task_ids)
    latest = {}
    for job in jobs.order_by("task_id", "created_at"):
        latest[job.task_id] = job  # later rows win
    return latest


def _subjects(run, task_ids):
    """{task_id: [(judged_a, judged_b or None), ...]}: the judge jobs a task should get."""
    if run.score_of_id:
        return {task_id: [(job, None)] for task_id, job in _latest_outputs(run.score_of_id, task_ids).items()}
    outputs_a = _latest_outputs(run.compare_a_id, task_ids)
    outputs_b = _latest_outputs(run.compare_b_id, task_ids)
    subjects = {}
    for task_id in outputs_a.keys() & outputs_b.keys():
        first, second = outputs_a[task_id], outputs_b[task_id]
        if _random.random() < 0.5:
            first, second = second, first
        subjects[task_id] = [(first, second), (second, first)] if run.swap else [(first, second)]
    return subjects


def create_judge_jobs(run, task_ids=None):
    """Queue the judge jobs of judge run ``run`` that are possible now and not
    made yet (``task_ids``: only those tasks). Returns how many were made."""
    if run.kind != Run.Kind.JUDGE or not (run.score_of_id or (run.compare_a_id and run.compare_b_id)):
        return 0
    with transaction.atomic():
        # The judge run's row lock: two outputs of one task succeeding at once
        # (two workers) create its job once, and the later one sees the earlier.
        run = Run.objects.select_for_update(of=("self",)).select_related("rubric").get(pk=run.pk)
        subjects = _subjects(run, task_ids)
        done = set(
            LLMJob.objects.filter(run=run, kind=LLMJob.Kind.JUDGE, task_id__in=list(subjects)).values_list(
                "task_id", flat=True
            )
        )
        todo = {task_id: pairs for task_id, pairs in subjects.items() if task_id not in done}
        tasks = Task.objects.in_bulk(list(todo))
        jobs = (_judge_job(run, tasks[task_id], a, b) for task_id, pairs in todo.items() for a, b in pairs)
        made = create.queue(jobs, batch_size=BATCH)  # announced when this transaction commits
    if made:
        log.info("judge jobs queued", extra={"run_id": run.pk, "count": made})
    return made


def _judge_job(run, task, judged_a, judged_b):
    rubric = rubric_of(run, task)
    prompt = build_prompt(task, rubric, judged_a.output, None if judged_b is None else judged_b.output)
    return create.new_job(
        kind=LLMJob.Kind.JUDGE,
        task=task,
        provider=run.provider,
        model=run.model,
        params=run.params,
        priority=LLMJob.Priority.BULK,
        created_by=run.created_by,
        run=run,
        judged_a=judged_a,
        judged_b=judged_b,
        prompt_text=prompt,
    )


def on_output(run_id, task_id):
    """A generate job of run ``run_id`` succeeded for ``task_id``: queue the
    judge jobs this output makes possible (running judge runs over that run)."""
    over = Q(compare_a_id=run_id) | Q(compare_b_id=run_id) | Q(score_of_id=run_id)
    judge_runs = Run.objects.filter(over, kind=Run.Kind.JUDGE, status=Run.Status.RUNNING)
    made = 0
    for judge_run in judge_runs.order_by("pk"):  # one lock order for every worker
        made += create_judge_jobs(judge_run, task_ids=[task_id])
    return made
