"""Prompt templates in a real browser: /templates/ previews an unsaved draft live
against a chosen task (a missing variable shown, naming it), saves it as version 1
then 2; the review page launches with a template and the job's card shows exactly
the messages it sent; the run form takes a template. Fixtures: tests/browser_support.py."""

import pytest
from django.contrib.auth.models import Permission

from eval import providers
from eval.models import LLMJob, PromptTemplate, Run
from tests import browser_support as support
from tests.browser_support import make_task
from tests.fakes.llm_server import FakeLLMServer, Script
from tests.fakes.openai_wire import FakeOpenAIServer, Reply

browser, server, page = support.browser, support.server, support.page
user, web_settings, worker = support.user, support.web_settings, support.worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def launcher(user):
    user.user_permissions.add(Permission.objects.get(codename="launch_run", content_type__app_label="eval"))
    return user


def preview_text(page):
    return page.inner_text("#preview")


def test_it_previews_a_draft_live_and_saves_versions(page, launcher):
    task = make_task(title="Capitals", prompt="What is the capital of {{ country }}?", metadata={"lang": "French"})
    page.goto("/templates/")
    page.select_option("#preview-task", str(task.pk))
    page.wait_for_function("() => document.getElementById('preview').textContent.includes('What is the capital')")
    assert "{{ country }}" in preview_text(page)  # task text is data: shown as it is, never rendered

    page.fill("#template-name", "in-language")
    page.fill("#template-system", "Answer in {{ metadata.lang }}.")
    page.wait_for_function("() => document.getElementById('preview').textContent.includes('Answer in French.')")
    page.fill(".message-content", "{{ title|upper }}: {{ prompt }} {{ metadata.tone }}")
    page.wait_for_selector("#preview-error:not([hidden])")
    assert "metadata.tone" in page.inner_text("#preview-error") and f"task {task.pk}" in page.inner_text(
        "#preview-error"
    )
    page.fill(".message-content", "{{ title|upper }}: {{ prompt }}")
    page.wait_for_function("() => document.getElementById('preview').textContent.includes('CAPITALS: What is')")
    assert page.is_hidden("#preview-error")

    page.click("#template-save")
    page.wait_for_function("() => document.getElementById('template-status').textContent.includes('v1')")
    page.fill("#template-system", "Answer in {{ metadata.lang }}, briefly.")
    page.wait_for_function("() => document.getElementById('preview').textContent.includes('French, briefly.')")
    page.click("#template-save")
    page.wait_for_function("() => document.getElementById('template-status').textContent.includes('v2')")
    assert list(PromptTemplate.objects.values_list("name", "version")) == [("in-language", 2), ("in-language", 1)]
    page.wait_for_selector("#templates-list button:has-text('in-language v2')")
    page.screenshot(path="/tmp/templates-page.png", full_page=True)
    assert page.errors == []


def test_the_review_page_and_the_run_form_launch_with_a_template(page, launcher, worker):
    task = make_task(words=5, source="tpl", title="Greeting", metadata={"lang": "Welsh"})
    template = PromptTemplate.objects.create(
        name="polite",
        version=3,
        system="Reply in {{ metadata.lang }}.",
        messages=[{"role": "user", "content": "Please: {{ prompt }}"}],
    )
    page.goto(f"/tasks/{task.pk}/")
    page.select_option("#run-template", str(template.pk))
    page.click(".run-button[data-provider=echo][data-model=echo]")
    page.wait_for_selector(".job-card .job-sent:not([hidden])")
    card = page.locator(".job-card").first
    card.locator(".job-sent summary").click()
    sent = card.locator(".job-sent-list").inner_text()
    assert "Reply in Welsh." in sent and "Please: word0 word1" in sent
    assert "polite v3" in card.locator(".job-sent summary").inner_text()
    job = LLMJob.objects.get()
    assert job.template_id == template.pk and job.messages_sent[0]["role"] == "system"
    page.wait_for_function("() => document.querySelector('.job-card .job-status').textContent === 'succeeded'")

    page.goto("/runs/")
    page.fill("#run-name", "templated")
    page.select_option("#run-model", "echo/echo")
    page.select_option("#run-source", "tpl")
    page.select_option("#run-template", str(template.pk))
    page.wait_for_function("() => document.getElementById('task-count').textContent.startsWith('1 task')")
    page.click("#run-submit")
    page.wait_for_selector("#run-form-status a")
    run = Run.objects.get(name="templated")
    assert run.template_id == template.pk
    assert LLMJob.objects.get(run=run).messages_sent[-1] == {"role": "user", "content": "Please: " + task.prompt}
    assert page.errors == []


def test_an_openai_compatible_model_beside_claude(page, user, web_settings, worker, monkeypatch):
    """The review page runs a model of an OpenAI-compatible endpoint and Claude (both through
    their real SDKs, against the local fakes) and shows their outputs side by side."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeLLMServer() as claude, FakeOpenAIServer() as local:
        claude.default = Script(chunks=["Claude ", "says ", "hello."])
        local.default = Reply(chunks=["Llama ", "says ", "hi."])
        web_settings.ANTHROPIC_API_KEY = "sk-ant-browser"
        web_settings.ANTHROPIC_BASE_URL = claude.url
        web_settings.ANTHROPIC_MODELS = ["claude-browser:4096"]
        web_settings.OPENAI_COMPATIBLE_ENDPOINTS = {
            "local-vllm": {
                "base_url": local.url + "/v1",
                "api_key_env": "",
                "models": ["llama-3.3-70b:4096"],
                "label": "Local vLLM",
                "max_concurrency": 8,
                "prices": {},
            }
        }
        providers.reset()
        task = make_task(words=6, title="Side by side")
        page.goto(f"/tasks/{task.pk}/")
        page.click('.run-button[data-provider="local-vllm"][data-model="llama-3.3-70b"]')
        page.wait_for_selector(".job-card")  # one launch at a time: the page ignores a click while one is on its way
        page.click(".run-button[data-provider=anthropic][data-model=claude-browser]")
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.job-card .job-status'))"
            ".filter((el) => el.textContent === 'succeeded').length === 2"
        )
        outputs = page.locator(".job-card .job-output").all_inner_texts()
        assert sorted(outputs) == ["Claude says hello.", "Llama says hi."]
        assert page.locator(".job-card .job-model").all_inner_texts() == [
            "local-vllm / llama-3.3-70b",
            "anthropic / claude-browser",
        ]
        page.screenshot(path="/tmp/review-side-by-side.png", full_page=True)
        assert local.requests[0].body["stream_options"] == {"include_usage": True}
        assert page.errors == []
    providers.reset()
