"""Demo tasks for a fresh install (``manage.py load_demo``)."""

from eval.models import Task
from eval.sync.records import validate

DEMO_SOURCE = "demo"

DEMO_TASKS = [
    ("capital-france", "Capital of France", "What is the capital of France? Answer in one sentence.", "Paris."),
    ("haiku-autumn", "Autumn haiku", "Write a haiku about autumn leaves falling on a quiet pond.", ""),
    ("explain-recursion", "Explain recursion", "Explain recursion to a ten-year-old in three sentences.", ""),
    ("sql-join", "SQL joins", "What is the difference between an INNER JOIN and a LEFT JOIN? Give an example.", ""),
    ("prime-check", "Prime check", "Is 221 a prime number? Show your reasoning step by step.", "No: 221 = 13 x 17."),
    (
        "summarise-email",
        "Summarise an email",
        "Summarise this email in one line: Hi team, the quarterly review moved from Tuesday to Thursday at 3pm "
        "because the finance numbers are late. Please update your slides by Wednesday noon. Thanks, Dana.",
        "Quarterly review moved to Thursday 3pm; slides due Wednesday noon.",
    ),
    (
        "translate-greeting",
        "Translate a greeting",
        "Translate 'Good morning, how are you?' into Spanish and German.",
        "",
    ),
    ("python-reverse", "Reverse a list", "Write a Python function that reverses a list without using reversed().", ""),
    ("units", "Unit conversion", "How many kilometres are in 26.2 miles? Round to one decimal place.", "42.2 km"),
    ("ethics", "A careful answer", "Give two arguments for and two against a four-day work week.", ""),
    ("regex", "Email regex", "Write a regular expression that matches simple email addresses and explain it.", ""),
    ("story-opening", "Story opening", "Write the first two sentences of a mystery story set on a night train.", ""),
]


def load_demo_tasks():
    """Create the demo tasks that are missing; return how many were created."""
    created = 0
    for external_id, title, prompt, reference in DEMO_TASKS:
        # The sync's own record check and hash: a later sync of the same records changes nothing.
        record = validate({"id": external_id, "title": title, "prompt": prompt, "reference": reference})
        _, was_created = Task.objects.get_or_create(
            source=DEMO_SOURCE,
            external_id=external_id,
            defaults={
                "title": title,
                "prompt": prompt,
                "reference": reference,
                "content_hash": record.content_hash,
                "prompt_hash": record.prompt_hash,
            },
        )
        created += was_created
    return created
