"""``/api/tasks/<id>/review``: the caller's own review of a task."""

from ninja import Router

from eval.api.errors import invalid
from eval.api.lookups import visible_task
from eval.api.responses import answers
from eval.api.schemas import ReviewOut, ReviewPut, TaskId
from eval.api.serializers import review_json
from eval.models import LLMJob, Review

router = Router(tags=["reviews"])


@router.get("/{task_id}/review", response=answers({200: ReviewOut}, 404), url_name="api-review")
def get_review(request, task_id: TaskId):
    """The caller's review of the task; nulls when there is none yet."""
    task = visible_task(request.user, task_id)
    review = Review.objects.filter(task=task, reviewer=request.user).first()
    return review_json(task.pk, review)


@router.put("/{task_id}/review", response=answers({200: ReviewOut}, 404, write=True))
def put_review(request, task_id: TaskId, payload: ReviewPut):
    """Replace the caller's review (fields left out become null)."""
    task = visible_task(request.user, task_id)
    preferred = payload.preferred_job
    if preferred is not None and not LLMJob.objects.filter(pk=preferred, task=task).exists():
        raise invalid("preferred_job is not a job of this task", "preferred_job")
    review, _ = Review.objects.update_or_create(
        task=task,
        reviewer=request.user,
        defaults={"rating": payload.rating, "notes": payload.notes or "", "preferred_job_id": preferred},
    )
    return review_json(task.pk, review)
