"""The runs pages (/runs/, /runs/<id>/): who may see them and who gets the
"New run" form and the run actions; the frames render with the run's text
escaped, its failures listed with their errors, its parent and firings
linked. The live parts are tested in the browser (test_browser_runs.py)."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from eval.jobs import claims, create, endings
from eval.models import Run
from tests.helpers import login

pytestmark = pytest.mark.django_db

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def launcher(db, django_user_model):
    """Not a reviewer, not staff: only eval.launch_run."""
    user = django_user_model.objects.create_user("lena", password="pw-lena-123")
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def make_run(creator, **fields):
    fields.setdefault("name", "echo over open tasks")
    fields.setdefault("provider", "echo")
    fields.setdefault("model", "echo")
    return Run.objects.create(created_by=creator, **fields)


@pytest.mark.parametrize("url", ["/runs/", "/runs/1/"])
def test_it_sends_anonymous_users_to_login(db, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_it_refuses_users_who_are_neither_reviewers_nor_launchers(outsider, staff):
    run = make_run(staff)
    client = login(outsider)
    for url in ["/runs/", f"/runs/{run.pk}/"]:
        response = client.get(url)
        assert response.status_code == 403
        assert b"reviewers group" in response.content
    assert b'href="/runs/"' not in client.get("/tokens/").content  # no nav link either


def test_it_shows_reviewers_the_list_without_the_form(reviewer):
    client = login(reviewer)
    html = client.get("/runs/").content.decode()
    assert 'id="runs-table"' in html and 'href="/runs/" aria-current="page"' in html
    assert 'id="run-form"' not in html and "data-can-launch" not in html
    assert "needs staff or the" in html


@pytest.mark.parametrize("who", ["staff", "launcher"])
def test_it_gives_staff_and_launchers_the_new_run_form(request, who, make_task):
    make_task(source="demo", status="open")
    make_task(source="demo", status="done")
    make_task(source="other", status="open")
    client = login(request.getfixturevalue(who))
    html = client.get("/runs/").content.decode()
    assert 'id="run-form"' in html and 'data-can-launch="1"' in html
    assert '<option value="demo">demo</option>' in html and '<option value="other">other</option>' in html
    # The page's config: per-source counts for the live count, the models, the confirm threshold.
    assert '"sources": {"demo": {' in html and '"echo"' in html and '"confirm_cost_usd": 5.0' in html


def test_the_run_page_renders_escaped_with_failures_and_links(staff, reviewer, make_task):
    parent = make_run(staff, name="weekly " + XSS, schedule="0 9 * * MON")
    run = make_run(staff, name="firing " + XSS, parent=parent, status=Run.Status.RUNNING)
    task = make_task(title="Task " + XSS)
    job, _ = create.create_job(task=task, provider="echo", model="echo", created_by=staff)
    job.__class__.objects.filter(pk=job.pk).update(run=run)
    claimed = claims.claim(job.pk, "w1").job
    assert endings.fail(job.pk, "w1", claimed.attempt, code="bad_request", message="the model said " + XSS)

    html = login(reviewer).get(f"/runs/{run.pk}/").content.decode()
    assert XSS not in html
    assert "firing &lt;img" in html and "Task &lt;img" in html and "the model said &lt;img" in html
    assert f'href="/runs/{parent.pk}/"' in html and 'data-failed-shown="1"' in html
    assert f'href="/tasks/{task.pk}/"' in html and "bad_request" in html
    # a reviewer may look, not act
    assert "data-can-cancel" not in html and "data-can-launch" not in html

    parent_html = login(staff).get(f"/runs/{parent.pk}/").content.decode()
    assert f'href="/runs/{run.pk}/"' in parent_html and "Firings of this schedule" in parent_html
    assert 'data-can-cancel="1"' in parent_html and 'data-can-launch="1"' in parent_html


def test_a_launcher_cancels_only_their_own_runs(launcher, staff):
    mine, theirs = make_run(launcher), make_run(staff)
    client = login(launcher)
    assert 'data-can-cancel="1"' in client.get(f"/runs/{mine.pk}/").content.decode()
    assert "data-can-cancel" not in client.get(f"/runs/{theirs.pk}/").content.decode()


def test_an_unknown_run_is_404(reviewer):
    assert login(reviewer).get("/runs/999999/").status_code == 404
