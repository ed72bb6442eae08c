"""Demo data for a fresh install: the demo tasks (``manage.py load_demo``)
and, with ``--with-results``, a comparison of the three offline demo models
with a judge run and two demo reviewers' verdicts, so the results page is
filled on a fresh install (DESIGN "Evaluation")."""

import hashlib
import itertools
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from eval import access
from eval.evaluation.reviews import judgements, seen
from eval.evaluation.runs import services as runs_service
from eval.models import Judgement, LLMJob, Run, Task
from eval.providers import catalogue
from eval.sync.records import validate

User = get_user_model()
REVIEWERS_GROUP = "reviewers"

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


# --- load_demo --with-results: a filled results page, offline -------------------------------

DEMO_REVIEWERS = ("demo-ana", "demo-ben")
DEMO_MODELS = ("echo", "echo-brief", "echo-reverse")  # verbatim, first half, words reversed
JUDGE_MODEL = "echo-judge"
JUDGED = ("echo", "echo-brief")  # the judge run compares these two runs, in both orders
RUN_PREFIX = "demo: "
SETTLE_SECONDS = 300
RUN_PARAMS = {"max_tokens": 256}
# "mentions a number": a check whose pass rate differs between the demo models.
RUN_CHECKS = [{"type": "contains"}, {"type": "regex", "pattern": "[0-9]"}]
SCORED_TASKS = 4  # each reviewer scores the three outputs of the first few tasks

# Per reviewer, how a verdict is chosen from a deterministic draw u in [0, 1):
# below `agree` the better answer (echo > echo-brief > echo-reverse), below
# `tie` a tie, below `bad` both bad, else the worse answer, or with
# `left_habit` the one shown on the left. Different habits make the
# agreement and position-bias figures worth reading.
HABITS = {
    "demo-ana": {"agree": 0.80, "tie": 0.88, "bad": 0.90, "left_habit": False},
    "demo-ben": {"agree": 0.62, "tie": 0.74, "bad": 0.80, "left_habit": True},
}


class DemoUnavailable(Exception):
    """The echo demo provider is not configured in this process."""


def _draw(*parts):
    """A deterministic number in [0, 1) for these parts (the same on every install)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def demo_reviewers():
    """The two demo reviewers (in the reviewers group, no usable password)."""
    group, created = Group.objects.get_or_create(name=REVIEWERS_GROUP)
    if created:  # made by a migration; someone deleted it
        group.permissions.add(access.permission_row(access.REVIEW_PERMISSION))
    users = []
    for username in DEMO_REVIEWERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(group)
        users.append(user)
    return users


def _demo_run(name, kind):
    """The demo run called ``name``, unless it was cancelled (then a new one is made)."""
    return Run.objects.filter(name=name, kind=kind).exclude(status=Run.Status.CANCELLED).order_by("-id").first()


def generate_runs(creator):
    """{model: run}: one generate run per demo model over the demo tasks, made once."""
    runs = {}
    for model in DEMO_MODELS:
        name = RUN_PREFIX + model
        run = _demo_run(name, Run.Kind.GENERATE)
        if run is None:
            data = {
                "name": name,
                "provider": "echo",
                "model": model,
                "params": RUN_PARAMS,
                "tasks": {"source": DEMO_SOURCE},
                "checks": RUN_CHECKS,
            }
            run = runs_service.create_run(user=creator, data=data)
        runs[model] = run
    return runs


def judge_run(creator, runs):
    """echo-judge comparing the echo and echo-brief runs, each pair in both orders; made once."""
    first, second = (runs[model] for model in JUDGED)
    name = f"{RUN_PREFIX}{JUDGE_MODEL} on {first.model} vs {second.model}"
    run = _demo_run(name, Run.Kind.JUDGE)
    if run is None:
        data = {
            "name": name,
            "kind": Run.Kind.JUDGE,
            "provider": "echo",
            "model": JUDGE_MODEL,
            "params": RUN_PARAMS,
            "judge": {"compare": [first.pk, second.pk], "swap": True},
        }
        run = runs_service.create_run(user=creator, data=data)
    return run


def _unfinished(runs):
    return LLMJob.objects.live().filter(run__in=runs).exists()


def _outputs(runs):
    """{task_id: {model: job}}: each demo task's latest succeeded output of each demo run."""
    by_task = {}
    jobs = LLMJob.objects.judgeable().filter(run__in=runs.values()).select_related("task")
    for job in jobs.order_by("task__external_id", "created_at"):
        by_task.setdefault(job.task_id, {})[job.model] = job
    return by_task


def _verdict(reviewer, task, better, worse, left):
    """``a`` (better), ``b`` (worse), ``tie`` or ``both_bad`` by the reviewer's habit."""
    habit = HABITS[reviewer.username]
    u = _draw(reviewer.username, task.external_id, better.model, worse.model)
    if u < habit["agree"]:
        return "a"
    if u < habit["tie"]:
        return "tie"
    if u < habit["bad"]:
        return "both_bad"
    if habit["left_habit"]:
        return "a" if left == better else "b"
    return "b"


def _already(reviewer, jobs):
    """Whether ``reviewer`` has judged exactly these jobs (one: a score; two: a pair, either order)."""
    mine = Judgement.objects.filter(reviewer=reviewer)
    if len(jobs) == 1:
        return mine.filter(kind=Judgement.Kind.SCORE, job_a=jobs[0]).exists()
    a, b = jobs
    return mine.filter(kind=Judgement.Kind.PAIRWISE, job_a__in=[a, b], job_b__in=[a, b]).exists()


def _pairwise(reviewer, task, outputs):
    """The reviewer's verdicts on the task's three pairs; returns how many were new.

    As on /pairs/: the first is blind; its verdict reveals two of the three
    models, and each other pair holds one of them, so those are not blind. Which
    pair comes first turns from task to task, so every pair of models has blind
    verdicts."""
    made = 0
    pairs = list(enumerate(itertools.combinations(DEMO_MODELS, 2)))
    first = int(_draw("first pair", task.external_id) * len(pairs))
    for index, (better_model, worse_model) in pairs[first:] + pairs[:first]:
        better, worse = outputs[better_model], outputs[worse_model]
        if _already(reviewer, [better, worse]):
            continue
        # Sides alternate by task and pair, so each model is shown left about half the time.
        left = better if (task.pk + index) % 2 == 0 else worse
        verdict = _verdict(reviewer, task, better, worse, left)
        judgements.record(
            reviewer=reviewer,
            task=task,
            kind=Judgement.Kind.PAIRWISE,
            jobs=[better, worse],
            verdict=verdict,
            shown_left=left,
            blind=not seen.knows_any(reviewer.pk, [better, worse]),
        )
        seen.mark_jobs(reviewer.pk, [better.pk, worse.pk])  # the verdict reveals both models
        made += 1
    return made


def _scores(reviewer, task, outputs):
    """The reviewer's 1-5 quality score of each of the task's outputs; returns how many were new."""
    made = 0
    base = {"echo": 4, "echo-brief": 3, "echo-reverse": 1}
    for model, job in outputs.items():
        if _already(reviewer, [job]):
            continue
        quality = base[model] + (1 if _draw(reviewer.username, task.external_id, model) < 0.35 else 0)
        judgements.record(
            reviewer=reviewer, task=task, kind=Judgement.Kind.SCORE, jobs=[job], answers={"quality": quality}
        )
        made += 1
    return made


def reviewer_verdicts(reviewers, runs):
    """The demo reviewers' blind pairwise verdicts on every demo pair and a few
    scores; those already there are left alone. Returns how many were new."""
    made = 0
    scored = 0
    for outputs in _outputs(runs).values():
        if set(outputs) != set(DEMO_MODELS):
            continue  # a task whose output is missing (hidden, failed): no pair
        task = outputs["echo"].task
        for reviewer in reviewers:
            made += _pairwise(reviewer, task, outputs)
            if scored < SCORED_TASKS:
                made += _scores(reviewer, task, outputs)
        scored += 1
    return made


def _settle(runs, drain, timeout=SETTLE_SECONDS):
    """Until every job of ``runs`` has ended: the drain runs what is queued, and
    jobs another worker holds (``make run``'s own) are waited for. Verdicts on
    half-finished runs would leave the rest to a second call, which the command
    promises adds nothing."""
    deadline = time.monotonic() + timeout
    while _unfinished(runs):
        drain()
        if time.monotonic() > deadline:
            raise DemoUnavailable(f"the demo runs' jobs did not end within {timeout} s: is a worker stuck?")
        if _unfinished(runs):
            time.sleep(0.2)


def load_demo_results(drain):
    """Seed the demo comparison (DESIGN "Evaluation"): the demo tasks, two demo
    reviewers, a generate run per demo model, a judge run, the reviewers'
    verdicts. ``drain()`` runs the worker until no job is queued (the caller's:
    this layer does not import the worker). Idempotent: a second call adds nothing.
    Returns {"tasks", "runs", "judgements"}: how many of each were new."""
    if catalogue.get("echo") is None:
        raise DemoUnavailable("the echo demo provider is not configured here: set ECHO_ENABLED=1")
    tasks = load_demo_tasks()
    reviewers = demo_reviewers()
    runs_before = Run.objects.count()
    generated = generate_runs(reviewers[0])
    _settle(generated.values(), drain)
    judged = judge_run(reviewers[0], generated)
    _settle([judged], drain)
    for run in [*generated.values(), judged]:  # judged runs first: a judge run is done after them
        runs_service.refresh_status(run)
    made = reviewer_verdicts(reviewers, generated)
    return {"tasks": tasks, "runs": Run.objects.count() - runs_before, "judgements": made}
