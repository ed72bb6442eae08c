"""The offline demo model: streams the prompt back, one word per token."""

import asyncio
import re

from django.conf import settings

from eval.providers import catalogue
from eval.providers.base import GenerationRequest, GenerationResult, Provider


class EchoProvider(Provider):
    entry = catalogue.ECHO

    async def stream(self, request: GenerationRequest, on_text):
        delay = settings.ECHO_CHUNK_DELAY_MS / 1000
        words = re.findall(r"\S+\s*", request.prompt)
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
        return GenerationResult("".join(text), stop_reason, input_tokens=len(words), output_tokens=tokens)
