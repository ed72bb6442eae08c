"""The results page (/results/, staff only) and ``load_demo --with-results``.

The page is a frame with its filters; results.js draws the figures from
/api/results (in the browser: test_browser_results.py). The demo seed runs
the real worker in this process, offline (no connection leaves the machine),
and a second run adds nothing."""

import io
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from eval import demo
from eval.management.commands import load_demo
from eval.models import Judgement, LLMJob, Run, Task
from eval.providers import catalogue
from tests.helpers import login


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.mark.django_db
def test_it_sends_anonymous_users_to_login():
    response = Client().get("/results/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_it_refuses_reviewers_with_the_sites_403(reviewer):
    client = login(reviewer)
    response = client.get("/results/")
    assert response.status_code == 403
    assert b"The results page is for staff" in response.content
    assert b'href="/results/"' not in client.get("/tokens/").content  # no nav link either


@pytest.mark.django_db
def test_it_renders_the_frame_and_filters_for_staff(staff, make_task):
    make_task(source="alpha")
    run = Run.objects.create(name="echo over <alpha>", provider="echo", model="echo", status=Run.Status.DONE)
    client = login(staff)
    response = client.get(f"/results/?source=alpha&runs={run.pk}&runs=x&include_stale=1")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/results/" aria-current="page"' in html
    assert f'data-results-url="/api/results?source=alpha&amp;runs={run.pk}&amp;include_stale=1"' in html
    assert '<option value="alpha" selected>' in html
    assert f'name="runs" value="{run.pk}" checked' in html
    assert "echo over &lt;alpha&gt;" in html
    assert "/static/eval/results.js" in html and "/static/eval/results.css" in html


@pytest.mark.django_db
def test_it_ignores_unknown_sources_and_bad_run_ids(staff):
    response = login(staff).get("/results/?source=nope&runs=1,a,,2")
    assert 'data-results-url="/api/results?runs=1%2C2"' in response.content.decode()


# --- load_demo --with-results ------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """Any connection that would leave this machine fails the test."""
    attempts = []
    connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else "unix"
        if host not in ("unix", "127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError(f"offline test: connection to {address} refused")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


def _counts():
    return {
        "tasks": Task.objects.count(),
        "runs": Run.objects.count(),
        "jobs": LLMJob.objects.count(),
        "judgements": Judgement.objects.count(),
    }


@pytest.mark.django_db(transaction=True)
def test_it_seeds_a_comparison_offline_and_only_once(offline, settings):
    settings.JOB_TRANSPORT = "db"
    out = io.StringIO()
    call_command("load_demo", "--with-results", stdout=out)
    assert "open /results/" in out.getvalue()
    first = _counts()

    runs = {run.model: run for run in Run.objects.filter(kind=Run.Kind.GENERATE)}
    assert set(runs) == set(demo.DEMO_MODELS)
    judge = Run.objects.get(kind=Run.Kind.JUDGE)
    assert (judge.model, judge.swap) == (demo.JUDGE_MODEL, True)
    assert {judge.compare_a.model, judge.compare_b.model} == set(demo.JUDGED)
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.DONE}
    tasks = len(demo.DEMO_TASKS)
    assert LLMJob.objects.filter(kind=LLMJob.Kind.GENERATE, status="succeeded").count() == 3 * tasks
    assert LLMJob.objects.filter(kind=LLMJob.Kind.JUDGE, status="succeeded").count() == 2 * tasks

    human = Judgement.objects.filter(reviewer__username__in=demo.DEMO_REVIEWERS)
    by_judge = Judgement.objects.filter(judge_job__isnull=False)
    # One blind pair per task and reviewer: its verdict reveals two of the three models (issue 18).
    assert human.filter(kind=Judgement.Kind.PAIRWISE, blind=True).count() == 2 * tasks
    assert human.filter(kind=Judgement.Kind.PAIRWISE, blind=False).count() == 2 * 2 * tasks
    assert human.filter(kind=Judgement.Kind.SCORE).count() == 2 * 3 * demo.SCORED_TASKS
    assert by_judge.filter(kind=Judgement.Kind.PAIRWISE).count() == 2 * tasks
    assert set(human.values_list("verdict", flat=True)) >= {"a", "b", "tie"}  # not one answer everywhere
    verdicts = [
        set(human.filter(reviewer__username=name).values_list("verdict", flat=True)) for name in demo.DEMO_REVIEWERS
    ]
    assert verdicts[0] and verdicts[1]
    for name in demo.DEMO_REVIEWERS:
        user = human.filter(reviewer__username=name).first().reviewer
        assert not user.has_usable_password()
        assert user.has_perm("eval.review_task")

    call_command("load_demo", "--with-results", stdout=io.StringIO())
    assert _counts() == first
    assert offline == []


@pytest.mark.django_db
def test_it_says_what_to_set_when_echo_is_not_configured(monkeypatch):

    monkeypatch.setattr(catalogue, "configured", list)
    with pytest.raises(CommandError, match="ECHO_ENABLED"):
        call_command("load_demo", "--with-results", stdout=io.StringIO())
    assert Run.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_jobs_another_worker_holds_are_waited_for_so_a_second_seed_adds_nothing(offline, settings):
    """`make run`'s own worker may take the demo's jobs: the seed waits for them
    to end before the verdicts, instead of judging the tasks that happened to be
    done (then a second call added more)."""
    settings.JOB_TRANSPORT = "db"
    settings.ECHO_CHUNK_DELAY_MS = 0
    calls = []

    def drain():
        calls.append(1)
        if len(calls) % 2:  # another worker holds the jobs now: nothing to do here
            return
        load_demo._drain()

    made = demo.load_demo_results(drain=drain)
    assert len(calls) >= 2 and made["judgements"] == 2 * 3 * len(demo.DEMO_TASKS) + 2 * 3 * demo.SCORED_TASKS
    assert demo.load_demo_results(drain=drain)["judgements"] == 0
