"""The API on a live HTTP server, shared by tests/test_openapi.py and
tests/test_schemathesis.py (registered in conftest.py through
``pytest_plugins``): a real server in a thread on the test database, and a
world of rows every endpoint can act on, with a staff caller's API token.

Tests using these need ``@pytest.mark.django_db(transaction=True)``: the
server thread reads what the test committed.
"""

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections

from eval.evaluation.reviews import judgements, pairs
from eval.evaluation.runs import services as runs
from eval.jobs import claims, create, endings, prompt_templates
from eval.models import ApiToken, PairAssignment, Run


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def live_url(plain_http):
    """A real HTTP server in a thread, built after the test's settings (pytest-django's
    session-wide live_server would keep the middleware of the first test that used it)."""
    handler = WSGIHandler()

    def app(environ, start_response):
        response = handler(environ, start_response)
        try:
            yield from response  # a streamed answer (exports) reads the database here
        finally:
            response.close()
            connections.close_all()  # the server thread's own, once the answer is sent

    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def succeeded_job(task, user, model, output):
    job, _ = create.create_job(task=task, provider="echo", model=model, created_by=user)
    attempt = claims.claim(job.pk, "w1").job.attempt
    endings.succeed_one(job.pk, "w1", attempt, output=output, stop_reason="end_turn")
    return job


@dataclass
class ApiWorld:
    """Rows for every endpoint: ``task`` has a queued, a failed and two succeeded
    jobs (``done``, ``brief``: two models) and a judgement of ``done``; ``other``
    has three succeeded jobs (blind pairs): ``to_judge`` is a pair served to the
    caller, ``to_skip`` another; ``running`` and ``scheduled`` are runs."""

    base: str
    token: str
    task: object
    queued: object
    failed: object
    done: object
    brief: object
    judged: object
    to_judge: object
    to_skip: object
    running: object
    scheduled: object
    template: object = None  # a prompt template
    finished: object = None  # a done run over one dataset (it may be marked the baseline)


@pytest.fixture
def api_world(live_url, staff, make_task):
    """The live server and a staff caller (staff endpoints are covered too) with its token."""
    task = make_task()
    queued, _ = create.create_job(task=task, provider="echo", model="echo", created_by=staff)
    failed, _ = create.create_job(task=task, provider="echo", model="echo", created_by=staff)
    attempt = claims.claim(failed.pk, "w1").job.attempt
    endings.fail(failed.pk, "w1", attempt, code="bad_request", message="boom")
    done = succeeded_job(task, staff, "echo", "one two")
    brief = succeeded_job(task, staff, "echo-brief", "one")
    other = make_task()
    pair_jobs = [succeeded_job(other, staff, model, model) for model in ("echo", "echo-brief", "echo-reverse")]
    judged = judgements.record(reviewer=staff, task=task, kind="score", jobs=[done], answers={"quality": 3})
    to_judge, _ = pairs.next_pair(staff)
    to_skip = PairAssignment.objects.create(
        token="s" * 43,
        user=staff,
        task=other,
        job_a=pair_jobs[0],
        job_b=pair_jobs[2],
        shown_left=pair_jobs[0],
        expires_at=to_judge.expires_at,
    )
    running = runs.create_run(user=staff, data={"name": "to cancel", "provider": "echo", "model": "echo"})
    scheduled = runs.create_run(
        user=staff, data={"name": "weekly", "provider": "echo", "model": "echo", "schedule": "0 6 * * 1"}
    )
    _, token = ApiToken.issue(staff, "live api")
    return ApiWorld(
        base=live_url,
        token=token,
        task=task,
        queued=queued,
        failed=failed,
        done=done,
        brief=brief,
        judged=judged,
        to_judge=to_judge,
        to_skip=to_skip,
        running=running,
        scheduled=scheduled,
        finished=Run.objects.create(
            name="done",
            provider="echo",
            model="echo",
            status="done",
            selection={"source": task.source},
            created_by=staff,
        ),
        template=prompt_templates.save(name="live", system="", messages=[{"role": "user", "content": "{{ prompt }}"}]),
    )
