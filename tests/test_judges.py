"""LLM judge runs through the real worker (issue 11 item 4): the echo-judge demo
model offline, and the real anthropic SDK against the local fake answering
judge prompts well, malformed, refused, and fenced; swapped pairs; judge jobs
made once, as soon as both outputs of a task exist."""

import asyncio

import pytest

from eval.evaluation.reviews.rubrics import default_rubric
from eval.evaluation.runs import judges
from eval.jobs import create
from eval.models import JobStatus, Judgement, LLMJob, Run
from eval.worker.service import serve
from tests.fakes.llm_server import FakeLLMServer, Script

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(fast_jobs):
    with FakeLLMServer() as server:
        fast_jobs.ANTHROPIC_API_KEY = "test-anthropic-key"
        fast_jobs.ANTHROPIC_BASE_URL = server.url
        fast_jobs.ANTHROPIC_MODELS = ["claude-judge-1:4096", "claude-judge-malformed:4096"]
        fast_jobs.PROVIDER_REQUEST_TIMEOUT_SECONDS = 5
        fast_jobs.JOB_MAX_ATTEMPTS = 1
        yield server


def generate_run(name, model, tasks):
    run = Run.objects.create(name=name, provider="echo", model=model, status=Run.Status.RUNNING)
    for task in tasks:
        job, _ = create.create_job(task=task, provider="echo", model=model)
        LLMJob.objects.filter(pk=job.pk).update(run=run, priority=LLMJob.Priority.BULK)
    return run


def judge_run(*, provider="echo", model="echo-judge", status=Run.Status.RUNNING, **fields):
    return Run.objects.create(
        name="judge",
        kind=Run.Kind.JUDGE,
        provider=provider,
        model=model,
        rubric=default_rubric(),
        status=status,
        **fields,
    )


def work():
    asyncio.run(serve(once=True))


def output_of(run, task):
    return LLMJob.objects.get(run=run, task=task)


@pytest.fixture
def compared(fast_jobs, make_task):
    tasks = [make_task(prompt="alpha beta gamma delta epsilon zeta"), make_task(prompt="one two three four")]
    return tasks, generate_run("verbatim", "echo", tasks), generate_run("brief", "echo-brief", tasks)


def test_it_judges_pairs_with_echo_judge_as_soon_as_both_outputs_exist(compared):
    tasks, verbatim, brief = compared
    run = judge_run(compare_a=verbatim, compare_b=brief)
    work()  # the outputs succeed, each completed pair gets its judge job, and the judges run
    judge_jobs = LLMJob.objects.filter(run=run)
    assert judge_jobs.count() == 2 and {job.status for job in judge_jobs} == {JobStatus.SUCCEEDED}
    for task in tasks:
        judge_job = judge_jobs.get(task=task)
        assert {judge_job.judged_a_id, judge_job.judged_b_id} == {
            output_of(verbatim, task).pk,
            output_of(brief, task).pk,
        }
        assert judge_job.kind == LLMJob.Kind.JUDGE and judge_job.priority == LLMJob.Priority.BULK
        assert judge_job.prompt_text.startswith(f"[{judges.PROMPT_VERSION}]") and task.prompt in judge_job.prompt_text
        (judgement,) = Judgement.objects.filter(judge_job=judge_job)
        assert (judgement.kind, judgement.reviewer_id, judgement.task_id) == ("pairwise", None, task.pk)
        assert (judgement.job_a_id, judgement.job_b_id) == (judge_job.judged_a_id, judge_job.judged_b_id)
        assert judgement.shown_left_id == judge_job.judged_a_id
        # echo-judge prefers the longer answer: the verbatim one, on whichever side it was shown.
        winner = judgement.job_a_id if judgement.verdict == "a" else judgement.job_b_id
        assert judgement.verdict in ("a", "b") and winner == output_of(verbatim, task).pk
        assert "longer" in judgement.notes and set(judgement.answers) == {"quality"}
        assert (judgement.judge_provider, judgement.judge_model) == ("echo", "echo-judge")
        assert judgement.judge_prompt_version == judges.PROMPT_VERSION
        assert judgement.output_hash_a == judgement.job_a.output_hash and judgement.prompt_hash == task.prompt_hash


def test_it_makes_judge_jobs_once_per_task(compared):
    tasks, verbatim, brief = compared
    run = judge_run(compare_a=verbatim, compare_b=brief, status=Run.Status.SCHEDULED)
    work()  # outputs only: a judge run not launched gets no jobs from them
    assert not LLMJob.objects.filter(run=run).exists()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    assert judges.create_judge_jobs(run) == 2
    assert judges.create_judge_jobs(run) == 0
    assert judges.on_output(verbatim.pk, tasks[0].pk) == 0
    assert LLMJob.objects.filter(run=run).count() == 2


def test_it_judges_each_pair_twice_in_both_orders_with_swap(compared):
    tasks, verbatim, brief = compared
    run = judge_run(compare_a=verbatim, compare_b=brief, swap=True)
    work()
    for task in tasks:
        first, second = LLMJob.objects.filter(run=run, task=task)
        assert (first.judged_a_id, first.judged_b_id) == (second.judged_b_id, second.judged_a_id)
        judgements = Judgement.objects.filter(task=task, judge_job__run=run)
        assert len(judgements) == 2
        assert {j.shown_left_id for j in judgements} == {first.judged_a_id, second.judged_a_id}
        assert {j.job_a_id if j.verdict == "a" else j.job_b_id for j in judgements} == {output_of(verbatim, task).pk}


def test_it_scores_one_runs_outputs(fast_jobs, make_task):
    tasks = [make_task(prompt=" ".join(f"w{i}" for i in range(45))), make_task(prompt="short")]
    scored = generate_run("scored", "echo", tasks)
    work()
    run = judge_run(score_of=scored)
    assert judges.create_judge_jobs(run) == 2  # at launch: the outputs already there
    work()
    long, short = (Judgement.objects.get(judge_job__run=run, task=task) for task in tasks)
    assert (long.kind, long.verdict, long.job_b_id, long.shown_left_id) == ("score", "", None, long.job_a_id)
    assert (long.answers, short.answers) == ({"quality": 3}, {"quality": 1})


@pytest.fixture
def anthropic_pair(fake, make_task):
    task = make_task(prompt="Name a colour.", reference="red")
    return task, generate_run("a", "echo", [task]), generate_run("b", "echo-brief", [task])


def test_it_records_a_valid_answer_from_the_real_sdk(anthropic_pair, fake):
    task, run_a, run_b = anthropic_pair
    run = judge_run(
        provider="anthropic", model="claude-judge-1", compare_a=run_a, compare_b=run_b, params={"max_tokens": 300}
    )
    work()
    judge_job = LLMJob.objects.get(run=run)
    assert judge_job.status == JobStatus.SUCCEEDED
    sent = next(r for r in fake.requests if r.body.get("model") == "claude-judge-1").body
    assert sent["messages"][0]["content"] == judge_job.prompt_text and "<answer_b>" in judge_job.prompt_text
    judgement = Judgement.objects.get(judge_job=judge_job)
    assert (judgement.verdict, judgement.job_a_id, judgement.answers) == ("a", judge_job.judged_a_id, {"quality": 4})
    assert judgement.judge_params == {"max_tokens": 300} and judgement.notes == "Answer A is clearer."


def test_it_fails_a_malformed_answer_and_keeps_its_text(anthropic_pair):
    task, run_a, run_b = anthropic_pair
    run = judge_run(provider="anthropic", model="claude-judge-malformed", compare_a=run_a, compare_b=run_b)
    work()
    judge_job = LLMJob.objects.get(run=run)
    assert (judge_job.status, judge_job.error_code) == (JobStatus.FAILED, "bad_judge_output")
    assert judge_job.output == "I prefer Answer A: it is clearer." and "not JSON" in judge_job.error_message
    assert not Judgement.objects.filter(judge_job=judge_job).exists()


def test_it_fails_a_refusal(anthropic_pair):
    task, run_a, run_b = anthropic_pair
    run = judge_run(provider="anthropic", model="claude-judge-refuse", compare_a=run_a, compare_b=run_b)
    work()
    judge_job = LLMJob.objects.get(run=run)
    assert (judge_job.status, judge_job.error_code) == (JobStatus.FAILED, "refused")
    assert not Judgement.objects.filter(judge_job=judge_job).exists()


def test_it_accepts_a_json_fence_and_nothing_else():
    assert judges.parse_answer('\n```json\n{"verdict": "tie"}\n```\n', pairwise=True)["verdict"] == "tie"
    assert judges.parse_answer('{"scores": {"quality": 2}}', pairwise=False) == {
        "verdict": "",
        "scores": {"quality": 2},
        "reason": "",
    }
    for bad in ['Sure! {"verdict": "a"}', '{"verdict": "left"}', '["a"]', '{"verdict": "a", "scores": [1]}']:
        with pytest.raises(judges.BadAnswer):
            judges.parse_answer(bad, pairwise=True)


def test_it_fails_scores_that_do_not_fit_the_rubric(anthropic_pair, fake):

    task, run_a, run_b = anthropic_pair
    work()  # the outputs first, so the next request is the judge's
    run = judge_run(provider="anthropic", model="claude-judge-1", compare_a=run_a, compare_b=run_b)
    fake.push(Script(chunks=['{"verdict": "b", "scores": {"quality": 9}}']))
    judges.create_judge_jobs(run)
    work()
    judge_job = LLMJob.objects.get(run=run)
    assert (judge_job.status, judge_job.error_code) == (JobStatus.FAILED, "bad_judge_output")
    assert judge_job.output == '{"verdict": "b", "scores": {"quality": 9}}'
