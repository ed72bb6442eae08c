"""Costs have one owner (eval/providers/pricing.py): the price of a model, the
estimate of a request, the cost of a finished call. The pages get every
estimate they show from the server (a dry run of the create call) and only
format it."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission

from eval.evaluation.runs import services as runs
from eval.models import LLMJob, Run
from eval.providers import catalogue, pricing
from tests.helpers import login

pytestmark = pytest.mark.django_db
STATIC = Path(__file__).resolve().parent.parent / "eval" / "static" / "eval"


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.fixture
def priced(settings):
    settings.MODEL_PRICES = {"echo": [2, 10]}  # USD per million input, output tokens
    settings.BULK_CONFIRM_COST_USD = 100
    return settings


@pytest.fixture
def launcher(django_user_model):
    user = django_user_model.objects.create_user("lena", password="pw-lena-123")
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_it_prices_a_model_from_model_prices_then_the_table(settings):
    settings.MODEL_PRICES = {"claude-sonnet-4-x": [7, 8]}
    anthropic = catalogue.ENTRIES["anthropic"]
    assert pricing.price(anthropic, "claude-sonnet-4-x1") == pricing.Price(Decimal(7), Decimal(8))
    assert pricing.price(anthropic, "claude-sonnet-4-5") == pricing.Price(Decimal(3), Decimal(15))
    assert pricing.price(anthropic, "no-such-model") is None
    assert pricing.price(catalogue.ENTRIES["echo"], "echo").free


def test_it_estimates_ceil_chars_over_four_in_and_max_tokens_out(priced):
    found = pricing.estimate(catalogue.ENTRIES["echo"], "echo", [5, 8, 401], 100)
    assert (found.calls, found.prompt_chars, found.input_tokens, found.output_tokens) == (3, 414, 2 + 2 + 101, 300)
    assert found.usd == Decimal("0.003210")  # (105 * 2 + 300 * 10) / 1e6
    assert found.as_json()["chars_per_token"] == pricing.CHARS_PER_TOKEN == 4
    unknown = pricing.estimate(catalogue.ENTRIES["anthropic"], "no-such-model", [40], 10)
    assert unknown.usd == 0 and unknown.price is None


def test_a_finished_call_costs_its_tokens_to_the_micro_dollar():
    anthropic = catalogue.ENTRIES["anthropic"]
    assert pricing.cost(anthropic, "claude-haiku-4-5", 1234, 567) == Decimal("0.004069")
    assert pricing.cost(anthropic, "claude-haiku-4-5", None, None) == Decimal("0")
    assert pricing.cost(anthropic, "no-such-model", 10, 10) is None
    assert Decimal("0.000001") == pricing.MICRODOLLAR


def test_a_jobs_estimate_is_a_dry_run_of_its_create_call(priced, reviewer, make_task):
    task = make_task(prompt="p" * 41)
    client = login(reviewer)
    path = f"/api/tasks/{task.pk}/jobs/estimate"
    body = {"provider": "echo", "model": "echo", "params": {"max_tokens": 50, "system": "s" * 3}}
    response = post(client, path, body)
    assert response.status_code == 200
    estimate = response.json()["estimate"]
    expected = pricing.estimate(catalogue.ENTRIES["echo"], "echo", [44], 50)
    assert estimate == expected.as_json()
    assert estimate["input_tokens"] == 11 and estimate["price"] == {"input": 2.0, "output": 10.0}
    # The default max tokens, as the create call would set it.
    default = post(client, path, {"provider": "echo", "model": "echo"}).json()["estimate"]
    assert default["output_tokens"] == catalogue.DEFAULT_MAX_TOKENS
    refused = post(client, path, {"provider": "echo", "model": "echo", "params": {"max_tokens": 0}})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "params.max_tokens"
    assert not LLMJob.objects.exists()


def test_a_jobs_estimate_is_404_for_whoever_cannot_see_the_task(priced, outsider, make_task):
    task = make_task()
    response = post(login(outsider), f"/api/tasks/{task.pk}/jobs/estimate", {"provider": "echo", "model": "echo"})
    assert response.status_code == 404


def test_a_runs_dry_run_answers_what_its_launch_would_be_checked_against(priced, launcher, make_task):
    for prompt in ("a" * 10, "b" * 20, "  "):
        make_task(prompt=prompt)
    body = {"name": "r", "provider": "echo", "model": "echo", "params": {"max_tokens": 30}}
    response = post(login(launcher), "/api/runs", {**body, "dry_run": True})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["dry_run"], answer["tasks"], answer["skipped"]) == (True, 2, 1)
    assert not Run.objects.exists() and not LLMJob.objects.exists()
    run = runs.create_run(user=launcher, data=body)
    assert answer["estimated_cost_usd"] == answer["estimate"]["usd"] == float(run.estimated_cost_usd)


def test_a_runs_dry_run_needs_the_launch_permission(priced, reviewer):
    response = post(login(reviewer), "/api/runs", {"name": "r", "provider": "echo", "model": "echo", "dry_run": True})
    assert response.status_code == 403


def test_the_pages_scripts_only_format_costs():
    for name in ("launch.js", "runs.js", "run.js", "cards.js"):
        script = (STATIC / name).read_text()
        assert not re.search(r"\b1e6\b|1_?000_?000|CHARS_PER_TOKEN|\b1024\b", script), name


def test_a_jobs_estimate_is_what_its_launch_reserves(priced, reviewer, make_task):
    priced.USER_DAILY_BUDGET_USD = 100
    task = make_task(prompt="q" * 123)
    client = login(reviewer)
    body = {"provider": "echo", "model": "echo", "params": {"max_tokens": 77, "system": "be brief"}}
    estimate = post(client, f"/api/tasks/{task.pk}/jobs/estimate", body).json()["estimate"]
    created = post(client, f"/api/tasks/{task.pk}/jobs", body)
    assert created.status_code == 201
    assert float(LLMJob.objects.get().reserved_usd) == estimate["usd"] > 0
