"""Who may see and do what (DESIGN "Who sees what"): every permission rule of
the site, asked by the API, the pages, the templates (through
eval/pages/context.py), the metrics view, the evaluation layer and the
commands alike. No other module reads ``is_staff`` or calls ``has_perm``.

- Staff: active staff or superusers. They see and do everything below.
- Reviewers: staff, or active users holding ``eval.review_task`` (the
  ``reviewers`` group has it). They see every task and job, blind pairs and runs.
- Launchers: staff, or active users holding ``eval.launch_run``. They create,
  launch and cancel runs (cancel: their own runs; staff any), and see runs.
- A job is cancelled or retried by its creator or by staff.
- Datasets are managed by staff or holders of ``eval.manage_datasets``.
- Results, the dashboard, the status endpoint, exports and /metrics: staff.
- Django's admin: active ``is_staff`` users (its own rule; superusers need the flag too).

The reviewer rule also exists as SQL (``reviewer_sql``) for the poll's one
prepared statement; tests/test_access.py holds it equal to ``is_reviewer``.
"""

from functools import cached_property

from django.contrib.auth.models import Permission

REVIEW_PERMISSION = "eval.review_task"
LAUNCH_PERMISSION = "eval.launch_run"
MANAGE_DATASETS_PERMISSION = "eval.manage_datasets"


def permission_row(name):
    """The ``Permission`` row of ``"app_label.codename"``, or None (not migrated yet)."""
    app_label, codename = name.split(".")
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()


def _active(user):
    return bool(user is not None and user.is_authenticated and user.is_active)


def _holds(user, permission):
    """Staff, or an active user holding ``permission`` (directly or through a group)."""
    return is_staff(user) or (_active(user) and user.has_perm(permission))


def is_staff(user):
    return _active(user) and bool(user.is_staff or user.is_superuser)


def is_reviewer(user):
    return _holds(user, REVIEW_PERMISSION)


def may_launch(user):
    """Creating, launching and cancelling runs: staff or ``eval.launch_run``."""
    return _holds(user, LAUNCH_PERMISSION)


def may_see_runs(user):
    return is_reviewer(user) or may_launch(user)


def may_cancel_run(user, run):
    """A launcher cancels their own runs; staff any run."""
    return is_staff(user) or (may_launch(user) and run.created_by_id == user.pk)


def may_manage_job(user, created_by_id):
    """Cancel and retry a job: its creator or staff."""
    return is_staff(user) or (_active(user) and created_by_id is not None and created_by_id == user.pk)


def may_manage_datasets(user):
    """Importing, editing and removing datasets: staff or ``eval.manage_datasets``."""
    return _holds(user, MANAGE_DATASETS_PERMISSION)


def may_use_admin(user):
    """Django's admin site lets in active users with ``is_staff`` (AdminSite.has_permission)."""
    return _active(user) and bool(user.is_staff)


# The permission half of the reviewer rule as SQL, for statements that filter by it
# (the poll's single cheap query: no ORM building). Two EXISTS: the user's own
# permissions and its groups'. is_active and staff are decided in Python first.
_REVIEW_PERMISSION_SQL = """(
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


def reviewer_sql(user):
    """``is_reviewer(user)`` for one SQL statement: None when the user is no reviewer
    whatever the database holds (anonymous, inactive); ``("", [])`` for staff (nothing
    to check); else ``(condition, params)``, a boolean SQL expression to AND in."""
    if not _active(user):
        return None
    if is_staff(user):
        return "", []
    return _REVIEW_PERMISSION_SQL, [user.pk, user.pk]


class Capabilities:
    """What a user may do, each asked once and only when read (the templates'
    ``can``: eval/pages/context.py)."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def review(self):
        return is_reviewer(self.user)

    @cached_property
    def see_runs(self):
        return may_see_runs(self.user)

    @cached_property
    def launch(self):
        return may_launch(self.user)

    @cached_property
    def staff(self):
        return is_staff(self.user)

    @cached_property
    def manage_datasets(self):
        return may_manage_datasets(self.user)

    @cached_property
    def admin(self):
        return may_use_admin(self.user)
