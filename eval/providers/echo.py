"""The offline demo models: stream the prompt back, one word per token.

``echo`` answers verbatim, ``echo-brief`` with the first half of the words,
``echo-reverse`` with the words in reverse order: deterministic answers that
differ, so outputs can be compared and pairs judged with no key."""

import asyncio
import re

from django.conf import settings

from eval.providers import catalogue
from eval.providers.base import GenerationRequest, GenerationResult, Provider


def _words(prompt):
    return re.findall(r"\S+\s*", prompt)


def _brief(words):
    return words[: (len(words) + 1) // 2]


def _reverse(words):
    words = [word.strip() for word in reversed(words)]
    return [word + " " for word in words[:-1]] + words[-1:]


ANSWERS = {"echo": lambda words: words, "echo-brief": _brief, "echo-reverse": _reverse}


class EchoProvider(Provider):
    entry = catalogue.ECHO

    def expected_tokens(self, request):
        # Known exactly: one token per word of the answer.
        answer = ANSWERS.get(request.model, ANSWERS["echo"])(_words(request.prompt))
        return max(1, min(request.max_tokens, len(answer)))

    async def stream(self, request: GenerationRequest, on_text):
        delay = settings.ECHO_CHUNK_DELAY_MS / 1000
        prompt_words = _words(request.prompt)
        words = ANSWERS.get(request.model, ANSWERS["echo"])(prompt_words)
        text, tokens, stop_reason = [], 0, "end_turn"
        loop = asyncio.get_running_loop()
        started = loop.time()
        for word in words:
            if tokens >= request.max_tokens:
                stop_reason = "max_tokens"
                break
            if delay:
                # Paced on its own clock, like a real server: a busy client loop
                # receives chunks late but does not slow the stream down.
                await asyncio.sleep(max(0.0, started + (tokens + 1) * delay - loop.time()))
            tokens += 1
            text.append(word)
            on_text(word, tokens)
        return GenerationResult("".join(text), stop_reason, input_tokens=len(prompt_words), output_tokens=tokens)
