"""``/api/templates``: prompt templates, versioned (saving a name again makes its next
version), and previews of a saved template or an unsaved draft against a task.

Seeing and previewing: reviewers. Creating: staff or ``eval.launch_run`` (403 otherwise)."""

from django.http import HttpResponse
from ninja import Router, Status

from eval import access
from eval.api.errors import forbidden, invalid, not_found
from eval.api.responses import answers
from eval.api.template_schemas import (
    DraftPreview,
    Preview,
    PreviewOut,
    TemplateCreate,
    TemplateId,
    TemplateList,
    TemplateOut,
)
from eval.jobs import prompt_templates
from eval.models import PromptTemplate, Task

router = Router(tags=["templates"])


def _template(user, template_id):
    template = PromptTemplate.objects.filter(pk=template_id).first() if access.is_reviewer(user) else None
    if template is None:
        raise not_found("no such template")
    return template


def _task(user, task_id):
    """The task a preview names in its body: 400 ``invalid`` (field task) when unseen."""
    task = Task.objects.filter(pk=task_id).first() if access.is_reviewer(user) else None
    if task is None:
        raise invalid("task: no such task", field="task")
    return task


@router.get("", response=answers({200: TemplateList}), url_name="api-templates")
def list_templates(request):
    """Every template version, by name then newest first (empty for callers who are not reviewers)."""
    if not access.is_reviewer(request.user):
        return {"templates": []}
    rows = PromptTemplate.objects.select_related("created_by").order_by("name", "-version")
    used = set(PromptTemplate.objects.filter(jobs__isnull=False).values_list("pk", flat=True).distinct())
    return {"templates": [{**prompt_templates.template_json(t, used=t.pk in used)} for t in rows]}


@router.post("", response=answers({201: TemplateOut}, 403, write=True))
def create_template(request, response: HttpResponse, payload: TemplateCreate):
    """Save a template: version 1 of a new name, else the name's next version (a saved
    version never changes). 400 `invalid` names the part that does not parse or is too large."""
    if not access.may_launch(request.user):
        raise forbidden("creating templates needs staff or the eval.launch_run permission")
    template = prompt_templates.save(
        name=payload.name,
        system=payload.system,
        messages=[message.model_dump() for message in payload.messages],
        created_by=request.user,
    )
    response["Location"] = f"/api/templates/{template.pk}"
    return Status(201, prompt_templates.template_json(template, used=False))


@router.post("/preview", response=answers({200: PreviewOut}, 404, write=True))
def preview_draft(request, payload: DraftPreview):
    """An unsaved draft rendered for a task: the messages a job would send, or 400
    `invalid` naming the variable (or the part) at fault."""
    task = _task(request.user, payload.task)
    system, messages = prompt_templates.clean_parts(payload.system, [m.model_dump() for m in payload.messages])
    return {"messages": prompt_templates.render(system, messages, task)}


@router.get("/{template_id}", response=answers({200: TemplateOut}, 404))
def get_template(request, template_id: TemplateId):
    return prompt_templates.template_json(_template(request.user, template_id))


@router.post("/{template_id}/preview", response=answers({200: PreviewOut}, 404, write=True))
def preview_template(request, template_id: TemplateId, payload: Preview):
    """A saved template rendered for a task (as a job of that task would send it)."""
    template = _template(request.user, template_id)
    task = _task(request.user, payload.task)
    return {"messages": prompt_templates.render(template.system, template.messages, task)}
