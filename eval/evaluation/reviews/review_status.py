"""Where a reviewer stands on tasks: reviewed (a saved review or a current
judgement of theirs), stale (a current judgement of theirs made against an
earlier prompt or reference), and the next task they have not reviewed."""

from django.db.models import Exists, OuterRef

from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews.judgements import current
from eval.models import Judgement, Review, Task

FILTERS = ("needed", "mine", "stale")


def _mine(user):
    return current(Judgement.objects.filter(task=OuterRef("pk"), reviewer=user))


def reviewed(user):
    """An Exists() that is true for tasks the user has reviewed."""
    return Exists(Review.objects.filter(task=OuterRef("pk"), reviewer=user)) | Exists(_mine(user))


def stale(user):
    return Exists(_mine(user).exclude(prompt_hash=OuterRef("prompt_hash")))


def filter_tasks(tasks, user, review):
    """``tasks`` narrowed by ``review`` (needed | mine | stale; "" keeps all)."""
    if not review:
        return tasks
    if review not in FILTERS:
        raise InvalidInput(f"review must be one of {', '.join(FILTERS)}", field="review")
    if review == "needed":
        return tasks.exclude(reviewed(user))
    if review == "mine":
        return tasks.filter(reviewed(user))
    return tasks.filter(stale(user))


def next_to_review(user, after_id):
    """The next task after ``after_id`` (by id, wrapping round) the user has not reviewed, or None."""
    needed = Task.objects.exclude(reviewed(user)).exclude(pk=after_id).order_by("id")
    following = needed.filter(pk__gt=after_id).values_list("id", flat=True).first()
    return following or needed.values_list("id", flat=True).first()
