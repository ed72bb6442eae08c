"""eval/access.py, the one owner of who may see and do what: its SQL copy of
the reviewer rule equals the Python one, the templates' ``can`` follows it,
and no other module spells a rule itself."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.db import connection
from django.utils import timezone

from eval import access
from eval.api import plain
from eval.models import LLMJob, Run
from tests.conftest import reviewers_group
from tests.helpers import login

ROOT = Path(__file__).resolve().parent.parent


def _grant(user, *names):
    user.user_permissions.add(*(access.permission_row(name) for name in names))


@pytest.fixture
def people(db, django_user_model):
    """Every kind of user the rules tell apart, by name."""
    make = django_user_model.objects.create_user
    users = {
        "plain": make("plain"),
        "inactive": make("inactive", is_active=False),
        "group_reviewer": make("group_reviewer"),
        "direct_reviewer": make("direct_reviewer"),
        "inactive_reviewer": make("inactive_reviewer", is_active=False),
        "staff": make("staff", is_staff=True),
        "inactive_staff": make("inactive_staff", is_staff=True, is_active=False),
        "superuser": make("superuser", is_superuser=True),
        "launcher": make("launcher"),
        "group_launcher": make("group_launcher"),
        "dataset_manager": make("dataset_manager"),
        "inactive_dataset_manager": make("inactive_dataset_manager", is_active=False),
    }
    for name in ("group_reviewer", "inactive_reviewer"):
        users[name].groups.add(reviewers_group())
    _grant(users["direct_reviewer"], access.REVIEW_PERMISSION)
    _grant(users["launcher"], access.LAUNCH_PERMISSION)
    launchers = Group.objects.create(name="launchers")
    launchers.permissions.add(access.permission_row(access.LAUNCH_PERMISSION))
    users["group_launcher"].groups.add(launchers)
    for name in ("dataset_manager", "inactive_dataset_manager"):
        _grant(users[name], access.MANAGE_DATASETS_PERMISSION)
    # Fresh rows: Django caches a user's permissions on the object.
    fresh = {name: django_user_model.objects.get(pk=user.pk) for name, user in users.items()}
    return {"anonymous": AnonymousUser(), **fresh}


@pytest.fixture
def tasks(make_task, people):
    """A task without jobs, one with jobs (one of them by a reviewer), and an id no task has."""
    bare, busy = make_task(), make_task()
    for n, creator in enumerate([None, people["group_reviewer"]]):
        LLMJob.objects.create(
            task=busy, provider="echo", model=f"m{n}", created_by=creator, available_at=timezone.now()
        )
    return {"bare": bare.pk, "busy": busy.pk, "missing": busy.pk + 1000}


EXPECTED = {  # user: (reviewer, launcher, staff, manages datasets, admin site)
    "anonymous": (False, False, False, False, False),
    "plain": (False, False, False, False, False),
    "inactive": (False, False, False, False, False),
    "group_reviewer": (True, False, False, False, False),
    "direct_reviewer": (True, False, False, False, False),
    "inactive_reviewer": (False, False, False, False, False),
    "staff": (True, True, True, True, True),
    "inactive_staff": (False, False, False, False, False),
    "superuser": (True, True, True, True, False),
    "launcher": (False, True, False, False, False),
    "group_launcher": (False, True, False, False, False),
    "dataset_manager": (False, False, False, True, False),
    "inactive_dataset_manager": (False, False, False, False, False),
}


def test_it_answers_each_kind_of_user(people):
    for name, user in people.items():
        answers = (
            access.is_reviewer(user),
            access.may_launch(user),
            access.is_staff(user),
            access.may_manage_datasets(user),
            access.may_use_admin(user),
        )
        assert answers == EXPECTED[name], name
        assert access.may_see_runs(user) == (EXPECTED[name][0] or EXPECTED[name][1]), name


def _sql_says_reviewer(user):
    rule = access.reviewer_sql(user)
    if rule is None:
        return False
    condition, params = rule
    if not condition:
        return True
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END", params)
        return cursor.fetchone()[0] == 1


def test_the_sql_reviewer_rule_is_the_python_one(people, tasks):
    """Over every kind of user, and every task (with jobs, without, none): the
    poll's SQL shows a task exactly when is_reviewer says yes and the task exists."""
    for name, user in people.items():
        assert _sql_says_reviewer(user) == access.is_reviewer(user), name
        for which, task_id in tasks.items():
            shown = plain.poll_state(user, task_id) is not None
            assert shown == (access.is_reviewer(user) and which != "missing"), (name, which)
    assert plain.poll_state(people["staff"], tasks["busy"])[0] == 2  # the jobs are counted


def test_the_sql_rule_follows_a_permission_taken_away(people, tasks):
    user = people["group_reviewer"]
    user.groups.clear()
    assert plain.poll_state(user, tasks["busy"]) is None  # no cache between the rule and the database


def test_a_run_is_cancelled_by_its_launcher_or_staff(people):
    mine = Run(created_by=people["launcher"])
    theirs = Run(created_by=people["group_launcher"])
    assert access.may_cancel_run(people["launcher"], mine)
    assert not access.may_cancel_run(people["launcher"], theirs)
    assert access.may_cancel_run(people["staff"], theirs) and access.may_cancel_run(people["superuser"], theirs)
    reviewer = people["group_reviewer"]
    assert not access.may_cancel_run(reviewer, Run(created_by=reviewer))  # a reviewer sees runs, launches none


def test_a_job_is_managed_by_its_creator_or_staff(people):
    creator = people["group_reviewer"]
    assert access.may_manage_job(creator, creator.pk)
    assert not access.may_manage_job(people["direct_reviewer"], creator.pk)
    assert access.may_manage_job(people["staff"], creator.pk)
    assert not access.may_manage_job(people["anonymous"], None)


@pytest.mark.parametrize(
    ("name", "shown", "hidden"),
    [
        ("launcher", ["Runs"], ["Blind pairs", "Results", "Dashboard", "Admin"]),
        ("group_reviewer", ["Blind pairs", "Runs"], ["Results", "Dashboard", "Admin"]),
        ("superuser", ["Blind pairs", "Runs", "Results", "Dashboard"], ["Admin"]),
        ("staff", ["Blind pairs", "Runs", "Results", "Dashboard", "Admin"], []),
        ("plain", [], ["Blind pairs", "Runs", "Results", "Dashboard", "Admin"]),
    ],
)
def test_the_site_menu_shows_what_the_user_may_open(plain_http, people, name, shown, hidden):
    html = login(people[name]).get("/tokens/").content.decode()
    menu = html.split('<nav aria-label="Site">')[1].split("</nav>")[0]
    links = re.findall(r">([^<>]+)</a>", menu)
    assert all(link in links for link in shown), links
    assert not any(link in links for link in hidden), links


# Reading a rule's ingredients: the staff flags, a permission, the templates' perms.
RULE_SPELLINGS = re.compile(
    r"(?<!access)\.is_staff\b(?!\s*=[^=])|(?<!access)\.is_superuser\b(?!\s*=[^=])|has_perm\(|\bperms\."
)


def test_no_module_but_eval_access_spells_a_permission_rule():
    owners = set()
    for path in [*(ROOT / "eval").rglob("*.py"), *(ROOT / "eval").rglob("*.html")]:
        if "migrations" in path.parts:
            continue
        if RULE_SPELLINGS.search(path.read_text()):
            owners.add(path.relative_to(ROOT).as_posix())
    assert owners == {"eval/access.py"}
