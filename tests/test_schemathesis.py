"""Schemathesis against the live server (tests/live_api.py) with a staff
caller's Bearer token: every operation of the schema served at
/api/openapi.json, with data that fits the schema (path ids from real rows,
so requests reach the views) and data that does not, then chains of linked
calls (a job created, then read, cancelled, retried...). Each answer must pass:

- not_a_server_error: no 5xx at all;
- status_code_conformance, content_type_conformance, response_schema_conformance:
  the answer is one the schema documents, in its documented shape;
- error_shape: every 4xx/5xx is DESIGN's ``{"error": {"code", "message", "field"?}}``
  with the code that goes with its status.

Bounded and reproducible: MAX_EXAMPLES per operation and generation mode,
derandomized (the same examples on every run), no shrinking, no example
database.
"""

from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from eval.api.app import api
from eval.api.errors import STATUS

pytestmark = [
    pytest.mark.django_db(
        transaction=True, reset_sequences=True
    ),  # the server thread reads what the test wrote; ids as on every run
    # Once, on the SQLite pass: about a minute, and what differs by database (text
    # PostgreSQL cannot store, integer ranges) is tests/test_hostile_input.py's, on both.
    pytest.mark.sqlite_pass_only,
]

MAX_EXAMPLES = 20
STATEFUL_SCENARIOS = 40
STATEFUL_STEPS = 6
SETTINGS = {
    "derandomize": True,  # the same examples on every run, on every machine
    "database": None,
    "deadline": None,
    "phases": [Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    "suppress_health_check": list(HealthCheck),
}
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
MISSING_ID = 987_654_321


def error_shape(ctx, response, case):
    """DESIGN "HTTP API": every refusal is ``{"error": {"code", "message", "field"?}}``,
    as JSON, with the status its code names."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0] == "application/json", f"a {response.status_code} answered as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error), f"not the error shape: {body!r}"
    assert error["code"] in STATUS, f"unknown error code {error['code']!r}"
    assert STATUS[error["code"]] == response.status_code, f"{error['code']} answered with {response.status_code}"
    assert isinstance(error["message"], str) and error["message"], f"no message: {body!r}"
    assert isinstance(error.get("field", ""), str), f"field is not text: {body!r}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]


def labels():
    """Every operation of the schema, as "METHOD /path" (one test each)."""
    spec = api.get_openapi_schema()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


def session():
    http = requests.Session()
    http.trust_env = False  # the live server is local: no proxy from the environment
    return http


@dataclass
class Served:
    schema: object
    base: str
    headers: dict
    path_values: dict
    http: requests.Session


@pytest.fixture
def served(api_world):
    """The schema as the live server serves it, the caller's headers, and real
    values for each path parameter (plus one that names nothing)."""
    world = api_world
    headers = {"Authorization": f"Bearer {world.token}"}
    http = session()
    answer = http.get(f"{world.base}/api/openapi.json", headers=headers, timeout=30)
    assert answer.status_code == 200
    jobs = [str(job.pk) for job in (world.queued, world.failed, world.done, world.brief)]
    path_values = {
        "task_id": [world.task.id, MISSING_ID],
        "job_id": [*jobs, "00000000-0000-4000-8000-000000000000"],
        "judgement_id": [world.judged.pk, MISSING_ID],
        "token": [world.to_judge.token, world.to_skip.token, "t" * 43],
        "run_id": [world.running.pk, world.scheduled.pk, MISSING_ID],
    }
    yield Served(schemathesis.openapi.from_dict(answer.json()), world.base, headers, path_values, http)
    http.close()


class FirstFailure:
    """Keeps the first failing check: Hypothesis replays a failing example to report
    it, and the replay meets a server whose state has moved on (a cancelled job is
    409 the second time), which it would report as flaky instead."""

    def __init__(self):
        self.failure = None

    def validate(self, case, response, headers):
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as failure:
            self.failure = self.failure or failure
            raise

    def run(self, function, *args, **kwargs):
        try:
            function(*args, **kwargs)
        except BaseException:
            if self.failure is not None:
                raise self.failure from None
            raise


@pytest.mark.parametrize("label", labels())
def test_operation_answers_as_documented(served, label):
    method, path = label.split(" ", 1)
    for mode in MODES:
        check_examples(served, served.schema[path][method], mode)


def check_examples(served, operation, mode):
    first = FirstFailure()

    @settings(max_examples=MAX_EXAMPLES, **SETTINGS)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def exchange(case, data):
        if mode is GenerationMode.POSITIVE:  # reach the views: ids of real rows (mostly)
            for name in case.path_parameters or {}:
                if name in served.path_values:
                    case.path_parameters[name] = data.draw(st.sampled_from(served.path_values[name]), label=name)
        response = case.call(base_url=served.base, session=served.http, headers=served.headers)
        first.validate(case, response, served.headers)

    first.run(exchange)


def test_linked_calls_answer_as_documented(served):
    """Schemathesis's state machine over the links it infers from the schema (ids in
    answers and ``Location`` headers feed the next call's path)."""
    first = FirstFailure()

    # The datasets endpoints are fuzzed one by one above, not chained: every import the
    # fuzzer makes adds a dataset to GET /api/datasets, so a link drawn from that list
    # depends on what earlier examples wrote, which Hypothesis refuses as flaky data
    # generation (FlakyStrategyDefinition). GET /api/runs/compare only reads and feeds
    # no call the jobs list does not: with its inferred links in the machine, Hypothesis
    # stopped the same way (no check had failed). Both are checked on their own above.
    chained = served.schema.exclude(path_regex=r"^/api/datasets").exclude(path="/api/runs/compare")

    class Calls(chained.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": served.base, "session": served.http, "headers": served.headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            first.validate(case, response, served.headers)

    scenarios = settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, **SETTINGS)
    first.run(Calls.run, settings=scenarios)
