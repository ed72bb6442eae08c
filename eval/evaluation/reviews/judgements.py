"""Judgements: recorded, superseded, withdrawn, and read back.

Append-only: a new judgement by the same judge on the same jobs supersedes
the earlier one (which stays, pointing nowhere new); undo withdraws a
judgement (kept, never counted) and the one it superseded counts again. A
judgement pins what it judged: each output's hash and the task's prompt
hash; when the task's prompt or reference changes at the source it is stale.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from eval.evaluation.errors import Conflict, Forbidden, InvalidInput, NotFound
from eval.evaluation.reviews.rubrics import clean_answers, rubric_for_source
from eval.models import Judgement, LLMJob

MAX_NOTES = 100_000
VERDICTS = tuple(Judgement.Verdict.values)


def undo_seconds():
    return settings.JUDGEMENT_UNDO_SECONDS


def current(queryset=None):
    """Judgements that count: not withdrawn, and not superseded by one that is not withdrawn."""
    queryset = Judgement.objects.all() if queryset is None else queryset
    newer = Judgement.objects.filter(supersedes=OuterRef("pk"), withdrawn_at__isnull=True)
    return queryset.filter(withdrawn_at__isnull=True).exclude(Exists(newer))


def _same_jobs(job_ids):
    job_ids = [str(job_id) for job_id in job_ids]
    if len(job_ids) == 1:
        return Q(job_a_id=job_ids[0], job_b__isnull=True)
    a, b = job_ids
    return Q(job_a_id=a, job_b_id=b) | Q(job_a_id=b, job_b_id=a)


def _is_uuid(text):
    try:
        return str(uuid.UUID(text)) == text  # the canonical lowercase form only, as the API's job ids
    except ValueError:
        return False


def judgeable_jobs(task, job_ids):
    """The jobs named, in order, if each is a succeeded, visible output of ``task``."""
    if not isinstance(job_ids, list) or not all(isinstance(job_id, str) for job_id in job_ids):
        raise InvalidInput("jobs must be a list of job ids", field="jobs")
    if len(set(job_ids)) != len(job_ids):
        raise InvalidInput("the same job is named twice", field="jobs")
    well_formed = [job_id for job_id in job_ids if _is_uuid(job_id)]
    jobs = LLMJob.objects.filter(pk__in=well_formed, task=task)
    found = {str(job.pk): job for job in jobs}
    judgeable = {str(pk) for pk in jobs.judgeable().values_list("pk", flat=True)}
    for job_id in job_ids:
        if job_id not in found:
            raise InvalidInput(f"{job_id[:40]!r} is not a job of this task", field="jobs")
        if job_id not in judgeable:
            raise InvalidInput(f"job {job_id} has no output to judge (succeeded, visible jobs only)", field="jobs")
    return [found[job_id] for job_id in job_ids]


def _clean_common(kind, jobs, verdict, notes):
    expected = 1 if kind == Judgement.Kind.SCORE else 2
    if len(jobs) != expected:
        raise InvalidInput(f"a {kind} judgement names {expected} job(s)", field="jobs")
    if kind == Judgement.Kind.PAIRWISE and verdict not in VERDICTS:
        raise InvalidInput(f"verdict must be one of {', '.join(VERDICTS)}", field="verdict")
    if notes is None:
        notes = ""
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise InvalidInput(f"notes must be text of at most {MAX_NOTES} characters", field="notes")
    return notes


def record(*, reviewer, task, kind, jobs, verdict="", answers=None, notes="", shown_left=None, blind=False):
    """A human judgement (``jobs`` from ``judgeable_jobs``); supersedes the
    reviewer's current one on the same jobs."""
    if kind not in Judgement.Kind.values:
        raise InvalidInput(f"kind must be one of {', '.join(Judgement.Kind.values)}", field="kind")
    notes = _clean_common(kind, jobs, verdict, notes)
    rubric = rubric_for_source(task.source)
    answers = clean_answers(rubric, answers, enforce_required=kind == Judgement.Kind.SCORE)
    job_a, job_b = jobs[0], (jobs[1] if len(jobs) > 1 else None)
    try:
        with transaction.atomic():
            previous = current(Judgement.objects.filter(_same_jobs([j.pk for j in jobs]), reviewer=reviewer)).first()
            return Judgement.objects.create(
                kind=kind,
                task=task,
                reviewer=reviewer,
                job_a=job_a,
                job_b=job_b,
                output_hash_a=job_a.output_hash,
                output_hash_b=job_b.output_hash if job_b else "",
                prompt_hash=task.prompt_hash,
                rubric=rubric,
                answers=answers,
                verdict=verdict if kind == Judgement.Kind.PAIRWISE else "",
                shown_left=shown_left,
                blind=blind,
                notes=notes,
                supersedes=previous,
            )
    except IntegrityError:  # another request superseded the same judgement first
        raise Conflict("this judgement changed at the same time elsewhere; reload and try again") from None


def withdraw(user, judgement_id):
    """Undo: the author withdraws a judgement within JUDGEMENT_UNDO_SECONDS."""
    now = timezone.now()
    judgement = Judgement.objects.filter(pk=judgement_id).first()
    if judgement is None:
        raise NotFound("no such judgement")
    if judgement.reviewer_id != user.pk:
        raise Forbidden("only its author may withdraw a judgement")
    window = timedelta(seconds=undo_seconds())
    changed = Judgement.objects.filter(
        pk=judgement_id, reviewer=user, withdrawn_at__isnull=True, created_at__gte=now - window
    ).update(withdrawn_at=now)
    if not changed:
        if judgement.withdrawn_at is not None:
            raise Conflict("this judgement is already withdrawn")
        raise Conflict(f"the undo window ({undo_seconds()} s) has passed; record a new judgement instead")
    judgement.withdrawn_at = now
    return judgement


def for_task(task, user, *, everyone=False):
    """The caller's current judgements on ``task`` and the LLM judges' (everyone's with ``everyone``)."""
    mine = Q(reviewer=user) | Q(judge_job__isnull=False)
    queryset = Judgement.objects.filter(task=task)
    if not everyone:
        queryset = queryset.filter(mine)
    return current(queryset).select_related("reviewer", "rubric").order_by("created_at", "id")


def is_stale(judgement, task_prompt_hash):
    return judgement.prompt_hash != task_prompt_hash


def _judge(judgement):
    """An LLM judge's pinned settings (None for a person)."""
    if not judgement.judge_job_id:
        return None
    return {
        "provider": judgement.judge_provider,
        "model": judgement.judge_model,
        "prompt_version": judgement.judge_prompt_version,
    }


def judgement_json(judgement, task_prompt_hash):
    jobs = [str(judgement.job_a_id)] + ([str(judgement.job_b_id)] if judgement.job_b_id else [])
    return {
        "id": judgement.pk,
        "kind": judgement.kind,
        "task": judgement.task_id,
        "jobs": jobs,
        "verdict": judgement.verdict or None,
        "answers": judgement.answers,
        "notes": judgement.notes,
        "blind": judgement.blind,
        "shown_left": str(judgement.shown_left_id) if judgement.shown_left_id else None,
        "stale": is_stale(judgement, task_prompt_hash),
        "withdrawn": judgement.withdrawn_at is not None,
        "rubric": {"id": judgement.rubric_id, "name": judgement.rubric.name, "version": judgement.rubric.version},
        "reviewer": judgement.reviewer.get_username() if judgement.reviewer_id else None,
        "judge_job": str(judgement.judge_job_id) if judgement.judge_job_id else None,
        "judge": _judge(judgement),
        "supersedes": judgement.supersedes_id,
        "created_at": judgement.created_at.isoformat(),
    }
