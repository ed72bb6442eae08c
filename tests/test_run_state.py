"""Progress a person can read: measured against the expected length, not max tokens."""

from eval.jobs.claims import ClaimedJob
from eval.providers.base import GenerationRequest
from eval.providers.echo import EchoProvider
from eval.worker.run_state import RunState


def state(max_tokens, expected):
    job = ClaimedJob(
        id="j",
        attempt=1,
        max_attempts=3,
        task_id=1,
        provider="echo",
        model="echo",
        prompt="p",
        params={"max_tokens": max_tokens},
    )
    run = RunState(job, expected_tokens=expected)
    run.generating()
    return run


def test_progress_follows_the_expected_length_then_max_tokens():
    run = state(max_tokens=64_000, expected=400)
    run.on_text("x", 100)
    update = run.progress_update()
    assert update.progress == 25  # against max tokens it would read 0 %
    assert "left" in update.message and "at most" not in update.message
    run.on_text("x", 800)  # longer than expected: now bounded by max tokens
    update = run.progress_update()
    assert update.progress == 1 and update.message.endswith("at most")


def test_progress_never_reaches_100_while_streaming():
    run = state(max_tokens=10, expected=10)
    run.on_text("x", 10)
    assert run.progress_update().progress == 99


def test_echo_knows_its_answer_length():
    request = GenerationRequest("echo-brief", "one two three four five six", 1000)
    assert EchoProvider().expected_tokens(request) == 3
    assert EchoProvider().expected_tokens(GenerationRequest("echo", "a b c", 2)) == 2
