"""Who may see and do what (DESIGN "Who sees what").

Reviewers are superusers, staff, or users holding ``eval.review_task`` (the
``reviewers`` group has it). They see every task and job. A job is cancelled
or retried by its creator or by staff.
"""

from eval.db import prepared_cursor

REVIEW_PERMISSION = "eval.review_task"


def is_staff(user):
    return bool(user.is_active and (user.is_staff or user.is_superuser))


def is_reviewer(user):
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or user.has_perm(REVIEW_PERMISSION)


def may_manage_job(user, created_by_id):
    """Cancel and retry: the job's creator or staff."""
    return is_staff(user) or (created_by_id is not None and created_by_id == user.pk)


# The permission test as SQL, for the poll's single cheap query (no ORM building).
_HAS_REVIEW_PERMISSION_SQL = """(
  EXISTS (SELECT 1 FROM auth_user_user_permissions up
          JOIN auth_permission p ON p.id = up.permission_id
          JOIN django_content_type ct ON ct.id = p.content_type_id
          WHERE up.user_id = %s AND p.codename = 'review_task' AND ct.app_label = 'eval')
  OR EXISTS (SELECT 1 FROM auth_user_groups ug
             JOIN auth_group_permissions gp ON gp.group_id = ug.group_id
             JOIN auth_permission p ON p.id = gp.permission_id
             JOIN django_content_type ct ON ct.id = p.content_type_id
             WHERE ug.user_id = %s AND p.codename = 'review_task' AND ct.app_label = 'eval')
)"""

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
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff or user.is_superuser:
        sql, params = _POLL_STATE_SQL.format(access=""), [task_id]
    else:
        sql = _POLL_STATE_SQL.format(access=" AND " + _HAS_REVIEW_PERMISSION_SQL)
        params = [task_id, user.pk, user.pk]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]), row[3] or "")
