"""A pair token under a burst: verdicts and skips sent at once on one token
(two tabs, a double click, a script) give it exactly one verdict or one skip,
never both and never two verdicts (threaded live server, parallel requests)."""

import json
import urllib.error
import urllib.request

import pytest

from eval.jobs import claims, create, endings
from eval.models import ApiToken, Judgement, PairAssignment
from tests.helpers import LiveServer, parallel

pytestmark = pytest.mark.django_db(transaction=True)

EACH = 6


def call(url, token, method, path, body=None):
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def finished(task, model, output):
    job, _ = create.create_job(task=task, provider="echo", model=model)
    attempt = claims.claim(job.pk, "w1").job.attempt
    assert endings.succeed_one(job.pk, "w1", attempt, output=output, stop_reason="end_turn")


@pytest.mark.parametrize("verdicts", [EACH * 2, EACH])
def test_a_token_takes_one_verdict_or_one_skip_under_a_burst(plain_http, reviewer, make_task, verdicts):
    task = make_task()
    finished(task, "echo", "one answer")
    finished(task, "echo-brief", "another answer")
    _, api_token = ApiToken.issue(reviewer, "burst")
    with LiveServer() as url:
        status, body = call(url, api_token, "GET", "/api/pairs/next")
        assert status == 200
        pair = json.loads(body)["pair"]
        verdict = lambda: call(url, api_token, "POST", f"/api/pairs/{pair}/verdict", {"verdict": "tie"})  # noqa: E731
        skip = lambda: call(url, api_token, "POST", f"/api/pairs/{pair}/skip")  # noqa: E731
        answers = parallel([verdict] * verdicts + [skip] * (EACH * 2 - verdicts))
    statuses = [status for status, _ in answers]
    assert statuses.count(201) + statuses.count(204) == 1, statuses
    assert set(statuses) <= {201, 204, 409, 410}, statuses
    assignment = PairAssignment.objects.get(token=pair)
    assert Judgement.objects.count() == statuses.count(201)
    assert (assignment.judgement_id is not None) == (201 in statuses)
    assert (assignment.skipped_at is not None) == (204 in statuses)
