"""The offline demo models answer differently, deterministically, and stop at max tokens."""

import asyncio

import pytest

from eval.providers.base import GenerationRequest
from eval.providers.echo import EchoProvider

PROMPT = "one two three four five"


def answer(model, max_tokens=100, prompt=PROMPT):
    streamed = []
    result = asyncio.run(
        EchoProvider().stream(GenerationRequest(model, prompt, max_tokens), lambda text, n: streamed.append(text))
    )
    assert "".join(streamed) == result.text  # what streamed is what was kept
    return result


@pytest.fixture(autouse=True)
def _instant(settings):
    settings.ECHO_CHUNK_DELAY_MS = 0


def test_each_demo_model_answers_its_own_way():
    assert answer("echo").text == PROMPT
    assert answer("echo-brief").text == "one two three "
    assert answer("echo-reverse").text == "five four three two one"
    assert answer("echo-reverse").text == answer("echo-reverse").text  # deterministic


def test_usage_and_the_max_tokens_cut():
    full = answer("echo-reverse")
    assert (full.stop_reason, full.input_tokens, full.output_tokens) == ("end_turn", 5, 5)
    cut = answer("echo-reverse", max_tokens=2)
    assert (cut.text, cut.stop_reason, cut.output_tokens) == ("five four ", "max_tokens", 2)
