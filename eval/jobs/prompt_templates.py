"""Prompt templates: checking a template's parts, and the messages a job sends.

Variables are the task's ``prompt``, ``reference``, ``title`` and ``metadata``
(``{{ metadata.x }}``). Task text is data, never template source: it is passed in
as values and never rendered itself. A missing variable (an empty reference counts
as missing) is an error naming the task and the variable, raised before any job is
created; a render never leaves half a prompt. Rendering happens in eval/jobs/sandbox.py.
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from eval.jobs import sandbox
from eval.jobs.errors import InvalidJob
from eval.models import PromptTemplate, Task
from eval.providers.base import joined_system, split_conversation

MAX_TEMPLATE_BYTES = 20 * 1024
MAX_MESSAGES = 50
MAX_NAME = 100
ROLES = ("user", "assistant")


def clean_parts(system, messages):
    """(system, messages) of a template as given (JSON values), checked: roles, the
    last turn a user's, at most MAX_TEMPLATE_BYTES in all, each part parses. Raises InvalidJob."""
    system = "" if system is None else system
    if not isinstance(system, str):
        raise InvalidJob("system must be a string", field="system")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise InvalidJob(f"messages must be a list of 1 to {MAX_MESSAGES} messages", field="messages")
    cleaned = []
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise InvalidJob(f"{field} must be {{'role', 'content'}}", field=field)
        if message["role"] not in ROLES or not isinstance(message["content"], str):
            raise InvalidJob(f"{field}: role is user or assistant, content a string", field=field)
        cleaned.append({"role": message["role"], "content": message["content"]})
    if cleaned[-1]["role"] != "user":
        raise InvalidJob("the last message must be the user's", field="messages")
    size = len(system.encode()) + sum(len(m["content"].encode()) for m in cleaned)
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidJob(f"the template is {size} bytes; at most {MAX_TEMPLATE_BYTES}", field="messages")
    _compile(system, "system", "the system prompt")
    for index, message in enumerate(cleaned):
        _compile(message["content"], f"messages[{index}].content", _message_name(index, message["role"]))
    return system, cleaned


def _message_name(index, role):
    """A message as the editor shows it, counted from 1 (``field`` keeps the JSON path)."""
    return f"message {index + 1} ({role})"


def _compile(source, field, name):
    try:
        sandbox.compile_source(source)
    except TemplateSyntaxError as error:
        message = f"{name}: template syntax error on line {error.lineno}: {error.message}"
        raise InvalidJob(message, field=field) from None
    except SecurityError as error:
        raise InvalidJob(f"{name}: {error}", field=field) from None


def variables(task):
    """The values a template sees (an empty reference is left undefined: using it is an error)."""
    values = {"prompt": task.prompt or "", "title": task.title or "", "metadata": dict(task.metadata or {})}
    if task.reference:
        values["reference"] = task.reference
    return values


def _task_name(task):
    return f"task {task.pk}" if task.pk else "the task"


def render(system, messages, task):
    """[{"role", "content"}] of the template rendered for ``task``: system first when it
    renders to text. Raises InvalidJob naming the task and what failed."""
    budget = sandbox.Budget(settings.MAX_PROMPT_CHARS, settings.TEMPLATE_RENDER_SECONDS)
    values = variables(task)
    parts = [("the system prompt", "system", system)] if system else []
    parts += [(_message_name(i, m["role"]), m["role"], m["content"]) for i, m in enumerate(messages)]
    rendered = []
    for field, role, source in parts:
        try:
            text = sandbox.render(source, values, budget)
        except UndefinedError as error:
            raise InvalidJob(f"{_task_name(task)}: {error.message} (in {field})", field="template") from None
        except sandbox.TemplateLimit as error:
            raise InvalidJob(f"{_task_name(task)}: {error} (in {field})", field="template") from None
        except (TemplateError, SecurityError, ArithmeticError, TypeError, ValueError, RecursionError) as error:
            message = f"{_task_name(task)}: the template failed in {field}: {type(error).__name__}: {error}"
            raise InvalidJob(message[:500], field="template") from None
        budget.max_chars -= len(text)
        if role != "system" or text.strip():
            rendered.append({"role": role, "content": text})
    if not rendered or not rendered[-1]["content"].strip():
        raise InvalidJob(f"{_task_name(task)}: the last message rendered empty", field="template")
    return rendered


def messages_for(task, template=None, system=""):
    """Exactly what a job of ``task`` sends ([{"role", "content"}], system first):
    ``template`` rendered (its system prompt and ``params.system`` together are refused),
    else the task's conversation or prompt, with ``system`` (params.system) joined on."""
    if template is not None:
        if template.system and system:
            raise InvalidJob(
                "the template has a system prompt: leave params.system out (or use a template without one)",
                field="params.system",
            )
        rendered = render(template.system, template.messages, task)
        if system:
            rendered.insert(0, {"role": "system", "content": system})
    else:
        task_system, turns = split_conversation(task.messages)
        turns = turns or (("user", task.prompt or ""),)
        system = joined_system(task_system, system)
        rendered = ([{"role": "system", "content": system}] if system else []) + [
            {"role": role, "content": content} for role, content in turns
        ]
    size = sum(len(m["content"]) for m in rendered)
    if size > settings.MAX_PROMPT_CHARS:
        raise InvalidJob(f"the prompt is longer than MAX_PROMPT_CHARS ({settings.MAX_PROMPT_CHARS})", field="prompt")
    return rendered


TASK_FIELDS = ("id", "prompt", "reference", "title", "metadata", "messages")
CHUNK = 1000


def messages_for_tasks(task_ids, template=None, system=""):
    """{task id: messages_for(task, ...)} for a run's tasks, read a chunk at a time.
    Every task renders before any job is created: the first failure raises, naming its task."""
    task_ids = list(task_ids)
    result = {}
    for start in range(0, len(task_ids), CHUNK):
        for task in Task.objects.filter(id__in=task_ids[start : start + CHUNK]).only(*TASK_FIELDS).order_by("id"):
            result[task.id] = messages_for(task, template, system)
    return result


def save(*, name, system, messages, created_by=None):
    """A new template version: the next one under ``name`` (1 for a new name). Rows never
    change once saved, so a job's template is always what rendered its messages."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InvalidJob(f"name is required (at most {MAX_NAME} characters)", field="name")
    name = name.strip()
    system, messages = clean_parts(system, messages)
    for _ in range(3):  # two saves of one name at once: the loser takes the next number
        latest = PromptTemplate.objects.filter(name=name).aggregate(top=Max("version"))["top"] or 0
        try:
            with transaction.atomic():
                return PromptTemplate.objects.create(
                    name=name, version=latest + 1, system=system, messages=messages, created_by=created_by
                )
        except IntegrityError:
            continue
    raise InvalidJob("the template was saved by someone else at the same moment: save again", field="name")


def template_json(template, *, used=None):
    """Template JSON; ``used``: whether a job was made with it (asked of the database when not given)."""
    return {
        "id": template.pk,
        "name": template.name,
        "version": template.version,
        "system": template.system,
        "messages": template.messages,
        "created_by": template.created_by.get_username() if template.created_by_id else None,
        "created_at": template.created_at.isoformat(),
        "used": template.jobs.exists() if used is None else used,
    }


def choices():
    """Every template version for a picker: by name, newest version first."""
    return list(PromptTemplate.objects.order_by("name", "-version").values("id", "name", "version"))
