"""The prompt fingerprint judgements pin: a conversation counts, and a task
without one keeps the hash it has always had (no judgement turns stale)."""

from eval.models.tasks import prompt_fingerprint

# sha256("5:Hello9:Bonjour !"), the fingerprint before tasks could hold messages.
PINNED = "56d80104172de0c3e0f1ddc6142b01a98114dd2c0a206610595af88193bff691"


def test_a_task_without_messages_keeps_its_hash():
    assert prompt_fingerprint("Hello", "Bonjour !") == PINNED
    assert prompt_fingerprint("Hello", "Bonjour !", None) == PINNED
    assert prompt_fingerprint("Hello", "Bonjour !", []) == PINNED


def test_the_messages_count_and_their_order_matters():
    one = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yes?"},
        {"role": "user", "content": "Go"},
    ]
    other = [one[0], {"role": "assistant", "content": "No."}, one[2]]
    assert prompt_fingerprint("", "", one) != PINNED
    assert prompt_fingerprint("", "", one) != prompt_fingerprint("", "", other)
    assert prompt_fingerprint("", "", one) != prompt_fingerprint("", "", list(reversed(one)))
    assert prompt_fingerprint("", "", one) == prompt_fingerprint("", "", [dict(m) for m in one])
