"""A run as asked (the POST /api/runs body, the command's options) checked and
turned into Run fields; and the task selection a run is launched over."""

from decimal import Decimal, InvalidOperation

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Length, Trim

from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews import rubrics
from eval.evaluation.runs import cron
from eval.evaluation.runs import output_checks as checks
from eval.jobs import states
from eval.jobs.validation import clean_job_request
from eval.models import LLMJob, PromptTemplate, Run, Task, prompt_fingerprint

SELECTION_KEYS = {"source", "status", "ids", "limit"}
MAX_NAME = 200


def _money(value, field):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidInput(f"{field} must be a number of US dollars", field=field)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{field} must be a number of US dollars", field=field) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(f"{field} must be 0 or more", field=field)
    return amount


def clean_selection(tasks):
    tasks = {} if tasks is None else tasks
    if not isinstance(tasks, dict) or set(tasks) - SELECTION_KEYS:
        raise InvalidInput(f"tasks takes only {', '.join(sorted(SELECTION_KEYS))}", field="tasks")
    selection = {}
    if tasks.get("source"):
        selection["source"] = str(tasks["source"])
    if tasks.get("status"):
        if tasks["status"] not in Task.Status.values:
            raise InvalidInput(f"tasks.status must be one of {', '.join(Task.Status.values)}", field="tasks.status")
        selection["status"] = tasks["status"]
    if tasks.get("ids") is not None:
        ids = tasks["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise InvalidInput("tasks.ids must be a list of integer task ids", field="tasks.ids")
        selection["ids"] = sorted(set(ids))
        _refuse_unknown_ids(selection["ids"])
    if tasks.get("limit") is not None:
        limit = tasks["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput("tasks.limit must be a whole number of at least 1", field="tasks.limit")
        selection["limit"] = limit
    return selection


ID_BATCH = 10_000  # under SQLite's limit on query parameters


def _refuse_unknown_ids(ids):
    """An id that names no task is a typo to point at, not a task to leave out quietly."""
    found = set()
    for start in range(0, len(ids), ID_BATCH):
        found.update(Task.objects.filter(id__in=ids[start : start + ID_BATCH]).values_list("id", flat=True))
    unknown = [task_id for task_id in ids if task_id not in found]
    if unknown:
        shown = ", ".join(str(task_id) for task_id in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InvalidInput(
            f"no task with id {shown}" if len(unknown) == 1 else f"no tasks with ids {shown}", field="tasks.ids"
        )


def _run_ref(value, field):
    run = Run.objects.filter(pk=value).first() if isinstance(value, int) and not isinstance(value, bool) else None
    if run is None:
        raise InvalidInput(f"{field}: no such run", field=field)
    if run.kind not in (Run.Kind.GENERATE, Run.Kind.IMPORTED):
        raise InvalidInput(f"{field}: a judge run judges generate or imported runs", field=field)
    return run


def clean_judge(judge):
    """Run fields of a judge run's ``judge`` block."""
    if not isinstance(judge, dict) or set(judge) - {"rubric", "compare", "score", "swap"}:
        raise InvalidInput("judge takes rubric, compare or score, swap", field="judge")
    if ("compare" in judge) == ("score" in judge):
        raise InvalidInput("judge needs either compare: [run_a, run_b] or score: run", field="judge")
    fields = {"swap": bool(judge.get("swap", False))}
    rubric_id = judge.get("rubric")
    if rubric_id is None:
        fields["rubric"] = rubrics.default_rubric()
    else:
        fields["rubric"] = rubrics.Rubric.objects.filter(pk=rubric_id).first() if isinstance(rubric_id, int) else None
        if fields["rubric"] is None:
            raise InvalidInput("judge.rubric: no such rubric", field="judge.rubric")
    if "compare" in judge:
        pair = judge["compare"]
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] == pair[1]:
            raise InvalidInput("judge.compare takes two different run ids", field="judge.compare")
        fields["compare_a"] = _run_ref(pair[0], "judge.compare")
        fields["compare_b"] = _run_ref(pair[1], "judge.compare")
    else:
        fields["score_of"] = _run_ref(judge["score"], "judge.score")
    return fields


def clean_template(template_id, params):
    """The PromptTemplate a run or a job names (400 ``invalid``, field template, when there is none)."""
    template = None
    if isinstance(template_id, int) and not isinstance(template_id, bool):
        template = PromptTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise InvalidInput("template: no such prompt template", field="template")
    if template.system and (params or {}).get("system"):
        raise InvalidInput(
            "the template has a system prompt: leave params.system out (or use a template without one)",
            field="params.system",
        )
    return template


def clean_run(data):
    """Run fields from a POST /api/runs body (a dict), plus ``confirm_cost_usd``."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InvalidInput(f"name is required (at most {MAX_NAME} characters)", field="name")
    kind = data.get("kind") or Run.Kind.GENERATE
    if kind not in (Run.Kind.GENERATE, Run.Kind.JUDGE):
        raise InvalidInput("kind is generate or judge (imported runs come from dataset uploads)", field="kind")
    params = clean_job_request(
        task=Task(prompt="probe"),
        provider=data.get("provider"),
        model=data.get("model"),
        params=data.get("params"),
        judge=kind == Run.Kind.JUDGE,
    )
    fields = {
        "name": name.strip(),
        "kind": kind,
        "provider": data["provider"],
        "model": data["model"],
        "params": params,
        "selection": clean_selection(data.get("tasks")),
        "checks": checks.validate(data.get("checks")),
        "max_cost_usd": _money(data.get("max_cost_usd"), "max_cost_usd"),
        "schedule": _schedule(data.get("schedule")),
        "confirm_cost_usd": _money(data.get("confirm_cost_usd"), "confirm_cost_usd"),
    }
    template = data.get("template")
    if template is not None:
        if kind == Run.Kind.JUDGE:
            raise InvalidInput("a template is for a generate run", field="template")
        fields["template"] = clean_template(template, params)
    if kind == Run.Kind.JUDGE:
        fields.update(clean_judge(data.get("judge")))
    elif data.get("judge") is not None:
        raise InvalidInput("judge is for kind: judge", field="judge")
    return fields


def _schedule(expr):
    if not expr:
        return ""
    if not isinstance(expr, str):
        raise InvalidInput("schedule must be a cron expression", field="schedule")
    return cron.check(expr)


# --- the selection, evaluated at launch -------------------------------------------------


def selected_tasks(selection, *, include_missing=False, skip_done_by=None):
    """The tasks a selection picks, lowest ids first: the one rule for runs (the API,
    ``runs create``) and ``enqueue_llm_jobs``.

    - ``ids``: exactly those tasks, even those gone from their source; otherwise
      only tasks still in their source (``include_missing``: those gone too).
    - ``source``, ``status``: narrow it; no ``status`` is every status.
    - ``skip_done_by=(provider, model)``: leave out tasks that already have a job of
      that model queued, running or succeeded (a second one would repeat it).
    - ``limit``: the first N of what is left.

    An unsliced queryset (the limit is a subquery): callers may annotate it."""
    tasks = Task.objects.all()
    if "ids" in selection:
        tasks = tasks.filter(id__in=selection["ids"])
    elif not include_missing:
        tasks = tasks.filter(missing_since__isnull=True)
    if selection.get("source"):
        tasks = tasks.filter(source=selection["source"])
    if selection.get("status"):
        tasks = tasks.filter(status=selection["status"])
    if skip_done_by is not None:
        provider, model = skip_done_by
        done = LLMJob.objects.filter(task=OuterRef("pk"), provider=provider, model=model)
        tasks = tasks.exclude(Exists(done.filter(status__in=states.LIVE_OR_SUCCEEDED)))
    if selection.get("limit"):
        tasks = Task.objects.filter(id__in=tasks.order_by("id").values("id")[: selection["limit"]])
    return tasks.order_by("id")


def launchable(selection, system, max_chars):
    """(rows, skipped) of a selection: rows are (task_id, prompt_hash, prompt
    characters) of tasks that can run; skipped are (task_id, reason) of those
    that cannot (empty prompt, over MAX_PROMPT_CHARS with the system prompt)."""
    tasks = selected_tasks(selection).annotate(chars=Length("prompt"), kept=Length(Trim("prompt")))
    values = tasks.values_list("id", "prompt_hash", "chars", "kept")
    rows, skipped, unhashed = [], [], []
    for task_id, prompt_hash, chars, kept in values:
        if not kept:
            skipped.append((task_id, "the task's prompt is empty"))
        elif chars + len(system) > max_chars:
            skipped.append((task_id, f"the prompt is longer than MAX_PROMPT_CHARS ({max_chars})"))
        else:
            rows.append((task_id, prompt_hash, chars + len(system)))
            if not prompt_hash:
                unhashed.append(task_id)
    if unhashed:  # tasks saved around the importer: hash them as create_job would
        hashes = {
            t.pk: prompt_fingerprint(t.prompt, t.reference)
            for t in Task.objects.filter(Q(id__in=unhashed)).only("prompt", "reference")
        }
        rows = [(i, h or hashes[i], c) for i, h, c in rows]
    return rows, skipped
