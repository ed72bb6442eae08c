"""top_p, stop and seed per launch and per run: checked against what each provider and
model takes (one it cannot take is a 400 naming it), and put on the wire by each SDK."""

import asyncio
import json

import pytest

from eval import providers
from eval.jobs.errors import InvalidJob
from eval.jobs.validation import clean_job_request
from eval.models import LLMJob, Run, Task
from eval.providers.base import GenerationRequest
from tests.fakes.llm_server import FakeLLMServer
from tests.helpers import login

ALL = {"top_p": 0.5, "stop": ["END"], "seed": 7}


@pytest.fixture
def configured(settings, plain_http):
    settings.ANTHROPIC_API_KEY = "ak"
    settings.ANTHROPIC_MODELS = ["claude-test:4096"]
    settings.GEMINI_API_KEY = "gk"
    settings.GEMINI_MODELS = ["gemini-test:4096"]
    settings.OPENAI_API_KEY = "ok"
    settings.OPENAI_MODELS = ["gpt-4.1:4096", "gpt-5-mini:4096", "o3:4096"]
    settings.ECHO_ENABLED = True
    return settings


def clean(provider, model, params):
    return clean_job_request(task=Task(prompt="hi"), provider=provider, model=model, params=params)


@pytest.mark.parametrize(("provider", "model"), [("gemini", "gemini-test"), ("openai", "gpt-4.1"), ("echo", "echo")])
def test_providers_that_take_every_param_keep_them(configured, provider, model):
    assert clean(provider, model, {**ALL, "max_tokens": 10}) == {"max_tokens": 10, **ALL}


@pytest.mark.parametrize(
    ("provider", "model", "params", "field"),
    [
        ("anthropic", "claude-test", {"seed": 1}, "params.seed"),
        ("openai", "gpt-5-mini", {"temperature": 0.2}, "params.temperature"),
        ("openai", "o3", {"top_p": 0.9}, "params.top_p"),
        ("openai", "o3", {"stop": ["x"]}, "params.stop"),
    ],
)
def test_a_param_the_provider_cannot_take_names_it(configured, provider, model, params, field):
    with pytest.raises(InvalidJob) as caught:
        clean(provider, model, params)
    assert caught.value.field == field
    assert field.removeprefix("params.") in caught.value.message


def test_anthropic_takes_top_p_and_stop(configured):
    assert clean("anthropic", "claude-test", {"top_p": 0.5, "stop": ["END"]})["stop"] == ["END"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"top_p": 0}, "params.top_p"),
        ({"top_p": 1.5}, "params.top_p"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "params.stop"),
        ({"stop": [""]}, "params.stop"),
        ({"stop": [3]}, "params.stop"),
        ({"seed": -1}, "params.seed"),
        ({"seed": 2**40}, "params.seed"),
        ({"seed": True}, "params.seed"),
    ],
)
def test_bad_values_are_refused(configured, params, field):
    with pytest.raises(InvalidJob) as caught:
        clean("echo", "echo", params)
    assert caught.value.field == field


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_per_launch_through_the_api(configured, reviewer, task):
    client = login(reviewer)
    url = f"/api/tasks/{task.id}/jobs"
    response = post(client, url, {"provider": "anthropic", "model": "claude-test", "params": {"seed": 3}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and response.json()["error"]["field"] == "params.seed"
    response = post(client, url, {"provider": "openai", "model": "gpt-4.1", "params": ALL})
    assert response.status_code == 201, response.content
    assert response.json()["params"] == {"max_tokens": 1024, **ALL}


@pytest.mark.django_db
def test_per_run_through_the_api(configured, staff, task):
    client = login(staff)
    body = {"name": "r", "provider": "anthropic", "model": "claude-test", "params": {"seed": 3}, "tasks": {}}
    response = post(client, "/api/runs", body)
    assert response.status_code == 400 and response.json()["error"]["field"] == "params.seed"
    body.update(provider="gemini", model="gemini-test", params=ALL)
    response = post(client, "/api/runs", body)
    assert response.status_code == 201, response.content
    assert Run.objects.get().params == {"max_tokens": 1024, **ALL}
    assert LLMJob.objects.get().params == {"max_tokens": 1024, **ALL}


@pytest.mark.parametrize("name", ["anthropic", "gemini"])
def test_anthropic_and_gemini_put_them_on_the_wire(configured, name, monkeypatch):
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    with FakeLLMServer() as fake:
        setattr(configured, f"{name.upper()}_BASE_URL", fake.url)
        providers.reset()
        provider = providers.get_provider(name)
        seed = 7 if name == "gemini" else None
        request = GenerationRequest(
            model=f"{'claude' if name == 'anthropic' else 'gemini'}-test",
            prompt="p",
            max_tokens=9,
            top_p=0.5,
            stop=("END",),
            seed=seed,
        )

        async def go():
            try:
                return await provider.stream(request, lambda text, n: None)
            finally:
                await provider.aclose()

        asyncio.run(go())
        body = fake.last.body
    if name == "anthropic":
        assert (body["top_p"], body["stop_sequences"]) == (0.5, ["END"])
        assert "seed" not in body
    else:
        config = body["generationConfig"]
        assert (config["topP"], config["stopSequences"], config["seed"]) == (0.5, ["END"], 7)
