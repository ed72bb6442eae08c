"""Request and answer schemas of ``/api/templates`` (eval/api/templates.py)."""

from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from eval.api.schemas import DATE_TIME, TASK_ID_RE, Body, BodyId, MessageOut
from eval.jobs.prompt_templates import MAX_MESSAGES, MAX_NAME, MAX_TEMPLATE_BYTES

VARIABLES_DOC = (
    "Jinja2 (sandboxed, StrictUndefined, no autoescaping) with the task's `prompt`, `reference`, `title` "
    f"and `metadata` (`{{{{ metadata.x }}}}`); at most {MAX_TEMPLATE_BYTES} bytes in all."
)


EXAMPLE = "Answer in one line.\n\n{{ prompt }}"


def _canonical_template_id(value):
    if isinstance(value, str) and not TASK_ID_RE.match(value):
        raise PydanticCustomError("template_id", "not a template id")
    return value


TemplateId = Annotated[
    int,
    BeforeValidator(_canonical_template_id),
    Field(ge=1),
    WithJsonSchema({"type": "integer", "minimum": 1, "description": "A template's id (a positive integer)."}),
]


class TemplateMessage(Body):
    role: Literal["user", "assistant"]
    content: str = Field(description=VARIABLES_DOC)


class TemplateCreate(Body):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "qa",
                    "system": "Answer briefly.",
                    "messages": [{"role": "user", "content": "Q: {{ prompt }}"}],
                }
            ]
        }
    }

    name: str = Field(min_length=1, max_length=MAX_NAME, description="Saving a name again makes its next version.")
    system: str = Field("", description="A system prompt. " + VARIABLES_DOC)
    messages: list[TemplateMessage] = Field(
        min_length=1, max_length=MAX_MESSAGES, description="The last is the user's."
    )


class Preview(Body):
    model_config = {"json_schema_extra": {"examples": [{"task": 1}]}}

    task: BodyId = Field(description="The task to render the template for.")


class DraftPreview(Preview):
    model_config = {
        "json_schema_extra": {"examples": [{"task": 1, "messages": [{"role": "user", "content": EXAMPLE}]}]}
    }

    system: str = Field("", description=VARIABLES_DOC)
    messages: list[TemplateMessage] = Field(min_length=1, max_length=MAX_MESSAGES)


class TemplateOut(Schema):
    id: int
    name: str
    version: int
    system: str
    messages: list[TemplateMessage]
    created_by: str | None
    created_at: str = Field(json_schema_extra=DATE_TIME)
    used: bool = Field(description="A job was made with it (it would never change anyway).")


class TemplateList(Schema):
    templates: list[TemplateOut]


class PreviewOut(Schema):
    messages: list[MessageOut] = Field(description="What a job would send, system first.")
