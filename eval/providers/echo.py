"""The offline demo models: stream the prompt back, one word per token (for
a conversation, its last user turn).

``echo`` answers verbatim, ``echo-brief`` with the first half of the words,
``echo-reverse`` with the words in reverse order: deterministic answers that
differ, so outputs can be compared and pairs judged with no key.

``echo-judge`` answers an LLM judge's prompt (eval/evaluation/judges.py) with
valid judge JSON, deterministically: of two answers it prefers the longer
(a tie when equal, both_bad when both are empty); each rating question of the
rubric gets a score by the judged answer's length (one step up the scale per
20 words). It reads the prompt's tagged blocks as a model would read them."""

import asyncio
import json
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


def _block(prompt, tag):
    """The text between <tag> and </tag> in a judge prompt, or None."""
    found = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.DOTALL)
    return found[1] if found else None


def _scores(prompt, answer):
    try:
        questions = json.loads(_block(prompt, "rubric_questions") or "[]")
    except ValueError:
        questions = []
    scores = {}
    for question in questions if isinstance(questions, list) else []:
        if isinstance(question, dict) and question.get("type") == "rating" and question.get("key"):
            low, high = question.get("scale", [1, 5])
            scores[question["key"]] = min(high, low + len(answer.split()) // 20)
    return scores


def _verdict(first, second):
    a, b = len(first.strip()), len(second.strip())
    if not a and not b:
        return "both_bad", "Both answers are empty."
    if a == b:
        return "tie", f"Both answers are {a} characters long."
    better, longer, shorter = ("a", a, b) if a > b else ("b", b, a)
    return better, f"Answer {better.upper()} is longer ({longer} characters against {shorter})."


def judge_answer(prompt):
    """echo-judge's answer to a judge prompt: one JSON object."""
    first = _block(prompt, "answer_a") or ""
    second = _block(prompt, "answer_b")
    if second is None:
        words = len(first.split())
        answer = {"scores": _scores(prompt, first), "reason": f"The answer has {words} words."}
    else:
        verdict, reason = _verdict(first, second)
        answer = {"verdict": verdict, "scores": _scores(prompt, first if verdict != "b" else second), "reason": reason}
    return json.dumps(answer)


ANSWERS = {
    "echo": lambda words: words,
    "echo-brief": _brief,
    "echo-reverse": _reverse,
    "echo-judge": lambda words: _words(judge_answer("".join(words))),
}


def _echoed(request):
    """The words echo answers from: the last user turn (the prompt, for a one-prompt task)."""
    return _words(request.turns()[-1][1])


class EchoProvider(Provider):
    entry = catalogue.ECHO

    def expected_tokens(self, request):
        # Known exactly: one token per word of the answer.
        answer = ANSWERS.get(request.model, ANSWERS["echo"])(_echoed(request))
        return max(1, min(request.max_tokens, len(answer)))

    async def stream(self, request: GenerationRequest, on_text):
        delay = settings.ECHO_CHUNK_DELAY_MS / 1000
        # Input: one token per word of every turn sent (a conversation's system text included).
        input_words = sum(len(_words(content)) for _, content in request.turns())
        if request.messages:
            input_words += len(_words(request.system))
        words = ANSWERS.get(request.model, ANSWERS["echo"])(_echoed(request))
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
        return GenerationResult("".join(text), stop_reason, input_tokens=input_words, output_tokens=tokens)
