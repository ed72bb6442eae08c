"""Rubrics, judgements (pinned, superseding, withdrawable, stale) and blind
pairs, through the evaluation services on real rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from eval.evaluation.errors import Conflict, Expired, Forbidden, InvalidInput, NotFound
from eval.evaluation.reviews import drafts, judgements, pairs, review_status, rubrics, seen
from eval.jobs import claims, create, endings, visibility
from eval.models import Judgement, PairAssignment, Review, Rubric, SourceRubric, Task

pytestmark = pytest.mark.django_db


def finished_job(task, output, *, provider="echo", model="echo", worker="w1"):
    job, _ = create.create_job(task=task, provider=provider, model=model)
    claimed = claims.claim(job.pk, worker).job
    assert endings.succeed_one(job.pk, worker, claimed.attempt, output=output, stop_reason="end_turn")
    job.refresh_from_db()
    return job


def score(reviewer, task, job, quality=4, **extra):
    jobs = judgements.judgeable_jobs(task, [str(job.pk)])
    return judgements.record(
        reviewer=reviewer, task=task, kind="score", jobs=jobs, answers={"quality": quality}, **extra
    )


# --- rubrics -------------------------------------------------------------------------


def test_default_rubric_applies_unless_the_source_has_one(task):
    assert rubrics.rubric_for_source(task.source).name == "default"
    custom = Rubric.objects.create(
        name="code",
        questions=[{"key": "runs", "label": "Runs", "type": "boolean", "required": True}],
    )
    SourceRubric.objects.create(source=task.source, rubric=custom)
    assert rubrics.rubric_for_source(task.source) == custom
    assert rubrics.rubric_for_source("another-source").name == "default"


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({}, "answers.quality"),  # required
        ({"quality": 6}, "answers.quality"),
        ({"quality": True}, "answers.quality"),
        ({"quality": "5"}, "answers.quality"),
        ({"quality": 3, "mood": "x"}, "answers.mood"),
        ({"quality": 3, "comment": 7}, "answers.comment"),
        ([], "answers"),
    ],
)
def test_answers_are_checked_against_the_rubric(answers, field):
    with pytest.raises(InvalidInput) as info:
        rubrics.clean_answers(rubrics.default_rubric(), answers)
    assert info.value.field == field


def test_answers_of_every_question_type():
    rubric = Rubric.objects.create(
        name="all",
        questions=[
            {"key": "r", "label": "R", "type": "rating", "scale": [0, 10], "required": True},
            {"key": "c", "label": "C", "type": "choice", "options": ["yes", "no"]},
            {"key": "b", "label": "B", "type": "boolean"},
            {"key": "t", "label": "T", "type": "text"},
        ],
    )
    assert rubrics.clean_answers(rubric, {"r": 0, "c": "no", "b": False, "t": ""}) == {"r": 0, "c": "no", "b": False}
    with pytest.raises(InvalidInput):
        rubrics.clean_answers(rubric, {"r": 1, "c": "maybe"})
    with pytest.raises(InvalidInput):
        rubrics.clean_answers(rubric, {"r": 1, "b": "true"})
    assert rubrics.clean_answers(rubric, {}, enforce_required=False) == {}


@pytest.mark.parametrize(
    "questions",
    [
        [],
        [{"key": "a b", "label": "x", "type": "text"}],
        [{"key": "a", "label": "x", "type": "stars"}],
        [{"key": "a", "label": "x", "type": "choice", "options": ["only"]}],
        [{"key": "a", "label": "x", "type": "rating", "scale": [5, 1]}],
        [{"key": "a", "label": "x", "type": "text"}, {"key": "a", "label": "y", "type": "text"}],
    ],
)
def test_bad_rubrics_are_refused(questions):
    with pytest.raises(InvalidInput):
        rubrics.check_questions(questions)


# --- judgements ----------------------------------------------------------------------


def test_a_score_pins_the_output_and_the_prompt(task, reviewer):
    job = finished_job(task, "Paris.")
    judgement = score(reviewer, task, job)
    assert judgement.output_hash_a == job.output_hash != ""
    assert judgement.prompt_hash == task.prompt_hash != ""
    assert judgement.rubric.name == "default" and judgement.answers == {"quality": 4}
    assert not judgements.is_stale(judgement, task.prompt_hash)


def test_only_succeeded_visible_jobs_of_the_task_can_be_judged(task, make_task, reviewer):
    queued, _ = create.create_job(task=task, provider="echo", model="echo")
    other = finished_job(make_task(), "elsewhere")
    hidden = finished_job(task, "hidden")
    visibility.set_hidden(hidden.pk, True)
    for job_id in (str(queued.pk), str(other.pk), str(hidden.pk), "not-a-uuid"):
        with pytest.raises(InvalidInput) as info:
            judgements.judgeable_jobs(task, [job_id])
        assert info.value.field == "jobs"


def test_a_new_judgement_supersedes_and_undo_brings_the_old_one_back(task, reviewer, staff):
    job = finished_job(task, "out")
    first = score(reviewer, task, job, quality=2)
    second = score(reviewer, task, job, quality=5)
    assert second.supersedes == first
    assert list(judgements.for_task(task, reviewer)) == [second]
    staffs = score(staff, task, job, quality=3)  # another judge: no supersede
    assert staffs.supersedes is None
    assert set(judgements.for_task(task, staff, everyone=True)) == {second, staffs}

    judgements.withdraw(reviewer, second.pk)
    assert list(judgements.for_task(task, reviewer)) == [first]  # undo: the earlier verdict counts again
    assert Judgement.objects.count() == 3  # nothing deleted
    with pytest.raises(Conflict):
        judgements.withdraw(reviewer, second.pk)


def test_withdraw_only_by_its_author_within_the_window(task, reviewer, staff, settings):
    job = finished_job(task, "out")
    judgement = score(reviewer, task, job)
    with pytest.raises(Forbidden):
        judgements.withdraw(staff, judgement.pk)
    with pytest.raises(NotFound):
        judgements.withdraw(reviewer, 10**9)
    Judgement.objects.filter(pk=judgement.pk).update(created_at=timezone.now() - timedelta(seconds=301))
    with pytest.raises(Conflict) as info:
        judgements.withdraw(reviewer, judgement.pk)
    assert "undo window" in info.value.message


def test_stale_when_prompt_or_reference_change_not_title_and_a_revert_clears_it(task, reviewer):
    job = finished_job(task, "out")
    judgement = score(reviewer, task, job)
    original = task.prompt
    task.title, task.metadata = "New title", {"tag": "x"}
    task.save()
    assert not judgements.is_stale(judgement, Task.objects.get(pk=task.pk).prompt_hash)
    task.reference = "a new reference"
    task.save()
    assert judgements.is_stale(judgement, Task.objects.get(pk=task.pk).prompt_hash)
    task.reference = ""
    task.prompt = original
    task.save()
    assert not judgements.is_stale(judgement, Task.objects.get(pk=task.pk).prompt_hash)


def test_pairwise_needs_two_jobs_and_a_verdict(task, reviewer):
    a, b = finished_job(task, "a"), finished_job(task, "b", model="echo")
    jobs = judgements.judgeable_jobs(task, [str(a.pk), str(b.pk)])
    with pytest.raises(InvalidInput) as info:
        judgements.record(reviewer=reviewer, task=task, kind="pairwise", jobs=jobs, verdict="left")
    assert info.value.field == "verdict"
    with pytest.raises(InvalidInput):
        judgements.record(reviewer=reviewer, task=task, kind="pairwise", jobs=jobs[:1], verdict="a")
    first = judgements.record(reviewer=reviewer, task=task, kind="pairwise", jobs=jobs, verdict="a")
    swapped = judgements.record(reviewer=reviewer, task=task, kind="pairwise", jobs=jobs[::-1], verdict="tie")
    assert swapped.supersedes == first  # the same two jobs, in either order


# --- drafts ----------------------------------------------------------------------------


def test_drafts_are_kept_per_user_and_bounded(task, reviewer, staff):
    drafts.put(reviewer, task, {"rating": 3, "notes": "half done"})
    assert drafts.get(reviewer, task).data == {"rating": 3, "notes": "half done"}
    assert drafts.get(staff, task) is None
    with pytest.raises(InvalidInput):
        drafts.put(reviewer, task, {"notes": "x" * 600_000})
    drafts.discard(reviewer, task)
    assert drafts.get(reviewer, task) is None


# --- blind pairs -------------------------------------------------------------------------


@pytest.fixture
def three_models(settings, make_task):
    """Three tasks, each with outputs of three (provider, model) pairs: 3 pairs per task."""
    settings.ANTHROPIC_API_KEY = "sk-test"
    settings.ANTHROPIC_MODELS = ["claude-a", "claude-b"]
    tasks = [make_task(prompt=f"prompt {i}") for i in range(3)]
    for task in tasks:
        finished_job(task, f"echo answer {task.pk}")
        finished_job(task, f"claude-a answer {task.pk}", provider="anthropic", model="claude-a")
        finished_job(task, f"claude-b answer {task.pk}", provider="anthropic", model="claude-b")
    return tasks


def test_pairs_take_the_latest_job_of_each_model_from_the_current_prompt(task, settings):
    old = finished_job(task, "old echo")
    new = finished_job(task, "new echo")
    assert pairs.candidate_pairs() == []  # one model only: nothing to compare
    settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_MODELS = "sk-test", ["claude-a"]
    claude = finished_job(task, "claude", provider="anthropic", model="claude-a")
    assert pairs.candidate_pairs() == [pairs.Pair.of(task.pk, new.pk, claude.pk)]
    assert old.pk not in {pairs.candidate_pairs()[0].job_a, pairs.candidate_pairs()[0].job_b}
    task.prompt = "a changed prompt"
    task.save()
    assert pairs.candidate_pairs() == []  # outputs of an older prompt are not compared


def test_pairs_are_served_least_judged_first_never_twice_and_until_the_target(three_models, reviewer, staff, settings):
    """A verdict reveals two of a task's three models, and each other pair of that
    task holds one of them: one blind pair per task and reviewer. With a target of
    one verdict, three reviewers judge the nine pairs, each served unjudged ones first."""
    settings.PAIR_TARGET_JUDGEMENTS = 1
    assert len(pairs.candidate_pairs()) == 9
    users = [reviewer, staff, type(reviewer).objects.create_user("carol", is_staff=True)]
    judged = set()
    for user in users:
        for _ in range(3):
            assignment, _ = pairs.next_pair(user)
            key = pairs.Pair.of(assignment.task_id, assignment.job_a_id, assignment.job_b_id)
            assert key not in judged  # least-judged first: an unjudged pair while there is one
            judged.add(key)
            judgement, _ = pairs.submit_verdict(user, assignment.token, verdict="left")
            assert judgement.blind
        assert pairs.next_pair(user) == (None, 0)  # one pair per task
    assert len(judged) == 9
    fourth = type(reviewer).objects.create_user("dave", is_staff=True)
    assert pairs.next_pair(fourth) == (None, 0)  # every pair has its verdict


def test_a_reload_serves_the_same_pending_pair_and_skip_sends_it_last(three_models, reviewer):
    first, remaining = pairs.next_pair(reviewer)
    assert remaining == 9
    again, _ = pairs.next_pair(reviewer)
    assert again.token == first.token
    pairs.skip(reviewer, first.token)
    second, _ = pairs.next_pair(reviewer)
    assert second.token != first.token
    skipped = pairs.Pair.of(first.task_id, first.job_a_id, first.job_b_id)
    order, _ = pairs.eligible_pairs(reviewer)
    assert order[-1] == skipped


def test_verdicts_map_sides_to_jobs_and_blindness_is_truthful(three_models, reviewer):
    assignment, _ = pairs.next_pair(reviewer)
    judgement, _ = pairs.submit_verdict(reviewer, assignment.token, verdict="left", notes="clearer")
    assert judgement.shown_left_id == assignment.shown_left_id
    assert (judgement.verdict == "a") == (assignment.shown_left_id == assignment.job_a_id)
    assert judgement.blind
    revealed = pairs.revealed(assignment)
    assert {revealed["left"]["model"], revealed["right"]["model"]} <= {"echo", "claude-a", "claude-b"}

    nxt, _ = pairs.next_pair(reviewer)
    seen.mark_task(reviewer.pk, nxt.task_id)  # the reviewer opened that task's review page
    judgement, _ = pairs.submit_verdict(reviewer, nxt.token, verdict="both_bad")
    assert not judgement.blind and judgement.verdict == "both_bad"


def test_tokens_are_single_use_bound_to_their_caller_and_expire(three_models, reviewer, staff, settings):
    assignment, _ = pairs.next_pair(reviewer)
    with pytest.raises(NotFound):
        pairs.submit_verdict(staff, assignment.token, verdict="left")  # foreign
    with pytest.raises(NotFound):
        pairs.submit_verdict(
            reviewer, assignment.token[:-1] + ("A" if assignment.token[-1] != "A" else "B"), verdict="left"
        )
    pairs.submit_verdict(reviewer, assignment.token, verdict="right")
    with pytest.raises(Conflict):
        pairs.submit_verdict(reviewer, assignment.token, verdict="right")
    later, _ = pairs.next_pair(reviewer)
    PairAssignment.objects.filter(pk=later.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Expired):
        pairs.submit_verdict(reviewer, later.token, verdict="left")


def test_hidden_jobs_leave_the_pairs(three_models, reviewer):
    task = three_models[0]
    hidden = task.jobs.filter(model="claude-b").get()
    visibility.set_hidden(hidden.pk, True)
    assert len(pairs.candidate_pairs()) == 7  # that task keeps one pair


# --- where a reviewer stands ------------------------------------------------------------


def test_review_filters_and_the_next_task_to_review(make_task, reviewer, staff):

    first, second, third = make_task(), make_task(), make_task()
    Review.objects.create(task=first, reviewer=reviewer, rating=4)
    job = finished_job(second, "answer")
    score(reviewer, second, job)
    tasks = Task.objects.all()

    def ids(review, user=reviewer):
        return sorted(review_status.filter_tasks(tasks, user, review).values_list("id", flat=True))

    assert ids("mine") == [first.pk, second.pk]
    assert ids("needed") == [third.pk]
    assert ids("needed", staff) == [first.pk, second.pk, third.pk]
    assert ids("stale") == []
    second.prompt = "changed at the source"
    second.save()
    assert ids("stale") == [second.pk]
    assert review_status.next_to_review(reviewer, first.pk) == third.pk
    assert review_status.next_to_review(reviewer, third.pk) is None
    assert review_status.next_to_review(staff, third.pk) == first.pk  # wraps round
    with pytest.raises(InvalidInput):
        review_status.filter_tasks(tasks, reviewer, "later")
