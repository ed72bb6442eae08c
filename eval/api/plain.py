"""The API's plain Django views, outside django-ninja.

- The poll, ``GET /api/tasks/<id>/jobs``: every open review tab sends it
  every 2 s, and nearly every answer is a 304. It is answered from one
  prepared SQL statement (``poll_state``, with eval/access.py's reviewer
  rule as SQL) behind the plain front door
  (auth.endpoint), with no request model or response schema built. The
  same URL's POST (create a job) and any other method go on to django-ninja,
  which also declares the poll for the OpenAPI schema (eval/api/tasks.py).
- The JSON 404 for any other path under /api/.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from eval import access, metrics
from eval.api import etag as etags
from eval.api.auth import endpoint
from eval.api.errors import not_found
from eval.api.schemas import TASK_ID_RE
from eval.api.serializers import is_terminal, job_json, poll_rows
from eval.db import prepared_cursor
from eval.evaluation.reviews import seen

READS = frozenset({"GET", "HEAD"})

# The task's prompt hash counts too (each job says whether it was made from
# the current prompt); with no jobs there is nothing it could change.
_POLL_STATE_SQL = """
SELECT COUNT(j.id), COALESCE(SUM(j.version), 0), COALESCE(MAX(j.version), 0),
       CASE WHEN COUNT(j.id) = 0 THEN '' ELSE MAX(t.prompt_hash) END
FROM eval_task t LEFT JOIN eval_llmjob j ON j.task_id = t.id
WHERE t.id = %s{access}
GROUP BY t.id
"""


def poll_state(user, task_id):
    """(job count, sum of versions, max version, prompt hash) of a task the user may see,
    or None (no such task, or not a reviewer). One indexed SQL statement."""
    rule = access.reviewer_sql(user)
    if rule is None:
        return None
    condition, params = rule
    sql = _POLL_STATE_SQL.format(access=f" AND {condition}" if condition else "")
    with prepared_cursor() as cursor:
        cursor.execute(sql, [task_id, *params])
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]), row[3] or "")


def poll_answer(request, task_id):
    """304 from one indexed SQL statement when nothing changed; otherwise one
    more query for all the task's jobs."""
    user = request.user
    state = poll_state(user, task_id)
    if state is None:
        raise not_found("no such task")
    tag = etags.poll_etag(user, task_id, state)
    if etags.matches(request, tag):
        metrics.observe_poll(304)
        return etags.not_modified(tag)
    metrics.observe_poll(200)
    rows = list(poll_rows(task_id))
    seen.mark_jobs(user.pk, [row["id"] for row in rows])  # models shown: no longer blind for these outputs
    body = {
        "task": task_id,
        "jobs": [job_json(row, user) for row in rows],
        "all_terminal": all(is_terminal(row) for row in rows),
    }
    return etags.tag(JsonResponse(body), etags.poll_etag(user, task_id, etags.poll_state_of_rows(rows)))


def _poll(request, task_id):
    if not TASK_ID_RE.match(task_id):
        raise not_found("no such task")
    return poll_answer(request, int(task_id))


poll = endpoint(GET=_poll)


def task_jobs(other_methods):
    """The view of ``/api/tasks/<id>/jobs``: reads to the plain poll, the rest
    (POST creates a job) to ``other_methods``, django-ninja's view of the URL."""

    def task_jobs_view(request, task_id):
        if request.method in READS:
            return poll(request, task_id)
        return other_methods(request, task_id=task_id)

    return csrf_exempt(task_jobs_view)


def _unknown(request, rest=""):
    raise not_found("no such API endpoint")


unknown = endpoint(**dict.fromkeys(("GET", "POST", "PUT", "PATCH", "DELETE"), _unknown))
