"""Blind pairwise comparison.

A pair is two visible, succeeded ``generate`` jobs of one task with
different (provider, model), the latest of each, made from the task's
current prompt. Pairs are served least-judged first until each has
PAIR_TARGET_JUDGEMENTS human verdicts, never twice to one caller. What the
caller gets is an opaque token: the random id of a stored assignment (jobs,
order, caller, expiry). Nothing in the answer names a task id, job, model or
provider; they are revealed once the verdict is in.
"""

import hashlib
import itertools
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from eval.evaluation.errors import Conflict, Expired, InvalidInput, NotFound
from eval.evaluation.reviews import judgements, seen
from eval.evaluation.reviews.rubrics import rubric_for_source, rubric_json
from eval.jobs.sqlvalues import as_uuid
from eval.models import Judgement, LLMJob, PairAssignment

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
SIDES = {"left", "right", "tie", "both_bad"}
_random = secrets.SystemRandom()


@dataclass(frozen=True)
class Pair:
    task_id: int
    job_a: uuid.UUID  # the smaller id of the two: a pair is unordered
    job_b: uuid.UUID

    @classmethod
    def of(cls, task_id, first, second):
        first, second = sorted((as_uuid(first), as_uuid(second)), key=str)
        return cls(task_id, first, second)


def _latest_jobs_by_task(source):
    """{task_id: {job id: (output hash, provider, creator id)}}: per task, the latest
    judgeable job of each (provider, model)."""
    jobs = LLMJob.objects.judgeable().filter(prompt_hash=F("task__prompt_hash"))
    if source:
        jobs = jobs.filter(task__source=source)
    latest = {}
    rows = jobs.order_by("task_id", "created_at", "id").values_list(
        "id", "task_id", "provider", "model", "output_hash", "created_by_id"
    )
    for job_id, task_id, provider, model, output_hash, created_by_id in rows:
        # A later job of the same model replaces it.
        latest[(task_id, provider, model)] = (job_id, (output_hash, provider, created_by_id))
    by_task = {}
    for (task_id, _, _), (job_id, about) in latest.items():
        by_task.setdefault(task_id, {})[job_id] = about
    return by_task


def _candidates(source):
    """(every pair, {job id: (output hash, provider, creator id)} of their jobs)."""
    pairs, about = [], {}
    for task_id, jobs in _latest_jobs_by_task(source).items():
        pairs.extend(Pair.of(task_id, a, b) for a, b in itertools.combinations(jobs, 2))
        about.update(jobs)
    return pairs, about


def candidate_pairs(source=""):
    return _candidates(source)[0]


def _verdict_counts(pairs):
    """Current human verdicts per pair."""
    counts = {}
    rows = judgements.current(
        Judgement.objects.filter(
            kind=Judgement.Kind.PAIRWISE, reviewer__isnull=False, task_id__in={p.task_id for p in pairs}
        )
    ).values_list("task_id", "job_a_id", "job_b_id")
    for task_id, job_a, job_b in rows:
        pair = Pair.of(task_id, job_a, job_b)
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _judged_by(user):
    """Every pair ``user`` has given a verdict on, withdrawn ones included: never served again."""
    rows = Judgement.objects.filter(kind=Judgement.Kind.PAIRWISE, reviewer=user).values_list(
        "task_id", "job_a_id", "job_b_id"
    )
    return {Pair.of(*row) for row in rows}


def _blind_for(user, pairs, jobs):
    """The pairs whose outputs ``user`` has never seen with their models (nor uploaded with them)."""
    known = seen.known(user.pk)
    task_of = {}
    for pair in pairs:
        task_of[pair.job_a] = task_of[pair.job_b] = pair.task_id

    def revealed(job, task_id):
        output_hash, provider, created_by_id = jobs[job]
        return known.output(job, task_id, output_hash) or seen.authored(user.pk, provider, created_by_id)

    shown = {job for job, task_id in task_of.items() if revealed(job, task_id)}
    return [p for p in pairs if p.job_a not in shown and p.job_b not in shown]


def _open_assignments(user, now):
    """The caller's unexpired, unjudged assignments by pair (the newest of each)."""
    rows = PairAssignment.objects.filter(user=user, judgement__isnull=True, expires_at__gt=now).order_by("created_at")
    return {Pair.of(a.task_id, a.job_a_id, a.job_b_id): a for a in rows}


def _spread(user, pair):
    """A tie-breaker that differs per reviewer, so reviewers start on different pairs."""
    return hashlib.sha256(f"{user.pk}:{pair.job_a}:{pair.job_b}".encode()).digest()


def eligible_pairs(user, source=""):
    """The pairs the caller may judge next, in serving order, and their open assignments."""
    now = timezone.now()
    pairs, jobs = _candidates(source)
    counts, mine = _verdict_counts(pairs), _judged_by(user)
    target = settings.PAIR_TARGET_JUDGEMENTS
    open_ = _open_assignments(user, now)
    eligible = _blind_for(user, [p for p in pairs if p not in mine and counts.get(p, 0) < target], jobs)

    def order(pair):
        assignment = open_.get(pair)
        skipped = assignment is not None and assignment.skipped_at is not None
        pending = assignment is not None and not skipped
        skipped_at = assignment.skipped_at.timestamp() if skipped else 0.0
        return (not pending, skipped, skipped_at, counts.get(pair, 0), _spread(user, pair))

    eligible.sort(key=order)
    return eligible, open_


def next_pair(user, source=""):
    """(assignment, remaining) for the caller's next pair, or (None, 0)."""
    eligible, open_ = eligible_pairs(user, source)
    if not eligible:
        return None, 0
    pair = eligible[0]
    assignment = open_.get(pair)
    if assignment is None or assignment.skipped_at is not None:
        assignment = _assign(user, pair)
    return assignment, len(eligible)


def _assign(user, pair):
    return PairAssignment.objects.create(
        token=secrets.token_urlsafe(32),
        user=user,
        task_id=pair.task_id,
        job_a_id=pair.job_a,
        job_b_id=pair.job_b,
        shown_left_id=_random.choice([pair.job_a, pair.job_b]),
        expires_at=timezone.now() + timedelta(seconds=settings.PAIR_TOKEN_MAX_AGE_SECONDS),
    )


def pair_json(assignment, remaining):
    """The blind answer: texts only, in the stored order."""
    task = assignment.task
    left, right = _sides(assignment)
    return {
        "pair": assignment.token,
        "task": {"title": task.title, "prompt": task.prompt, "reference": task.reference, "messages": task.messages},
        "left": {"output": left.output},
        "right": {"output": right.output},
        "rubric": rubric_json(rubric_for_source(task.source)),
        "remaining": remaining,
    }


def _sides(assignment):
    if assignment.shown_left_id == assignment.job_a_id:
        return assignment.job_a, assignment.job_b
    return assignment.job_b, assignment.job_a


def find(user, token):
    """The caller's assignment for ``token``: unknown, tampered or foreign -> NotFound; expired -> Expired."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise NotFound("no such pair")
    assignment = PairAssignment.objects.select_related("task", "job_a", "job_b").filter(token=token, user=user).first()
    if assignment is None:
        raise NotFound("no such pair")
    if assignment.expires_at <= timezone.now():
        raise Expired("this pair has expired; open the next one")
    return assignment


def _usable(user, token):
    """The caller's assignment for ``token`` if it can still take a verdict or a skip."""
    assignment = find(user, token)
    if assignment.judgement_id is not None:
        raise Conflict("this pair already has your verdict")
    if assignment.skipped_at is not None:
        raise Expired("you skipped this pair; its token is spent: open the next one")
    return assignment


def submit_verdict(user, token, *, verdict, answers=None, notes=""):
    """Record the verdict on a served pair and reveal its models to the caller.

    Blind only if the caller had never been shown either output with its model
    (by any page, answer or earlier reveal), whatever served the token."""
    if verdict not in SIDES:
        raise InvalidInput(f"verdict must be one of {', '.join(sorted(SIDES))}", field="verdict")
    assignment = _usable(user, token)
    jobs = judgements.judgeable_jobs(assignment.task, [str(assignment.job_a_id), str(assignment.job_b_id)])
    with transaction.atomic():
        taken = PairAssignment.objects.filter(pk=assignment.pk, judgement__isnull=True, skipped_at__isnull=True)
        if not taken.select_for_update().exists():  # a skip or a verdict from another tab came first
            raise Conflict("this pair was skipped or judged at the same time elsewhere; open the next one")
        judgement = judgements.record(
            reviewer=user,
            task=assignment.task,
            kind=Judgement.Kind.PAIRWISE,
            jobs=jobs,
            verdict=_as_ab(assignment, verdict),
            answers=answers,
            notes=notes,
            shown_left=assignment.shown_left,
            blind=not seen.knows_any(user.pk, jobs),
        )
        taken.update(judgement=judgement)
        seen.mark_jobs(user.pk, [job.pk for job in jobs])  # the answer reveals both models
    return judgement, assignment


def _as_ab(assignment, verdict):
    """left/right as the judgement's a/b (a = job_a, whatever side it was shown on)."""
    if verdict not in ("left", "right"):
        return verdict
    left_is_a = assignment.shown_left_id == assignment.job_a_id
    return "a" if (verdict == "left") == left_is_a else "b"


def skip(user, token):
    """Skip a served pair: its token is spent; the pair comes back later, last, under a new one."""
    assignment = _usable(user, token)
    skipped = PairAssignment.objects.filter(pk=assignment.pk, judgement__isnull=True, skipped_at__isnull=True).update(
        skipped_at=timezone.now()
    )
    if not skipped:
        raise Conflict("this pair was skipped or judged at the same time elsewhere; open the next one")


def revealed(assignment):
    """After the verdict: which model was on which side."""
    left, right = _sides(assignment)
    return {side: {"provider": job.provider, "model": job.model} for side, job in (("left", left), ("right", right))}
