from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Max

from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews import seen
from eval.evaluation.reviews.rubrics import check_questions
from eval.jobs import create, transitions
from eval.jobs.errors import JobError
from eval.models import (
    ApiToken,
    Judgement,
    LLMJob,
    PromptTemplate,
    Review,
    Rubric,
    SourceRubric,
    Task,
    WorkerHeartbeat,
)


class LabelledSplitDateTimeMixin:
    """The admin's date-and-time fields are two inputs under one <label for=...>
    that names only the first: give each half its own accessible name."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and isinstance(field.widget, forms.MultiWidget):
            for widget, part in zip(field.widget.widgets, ("date", "time"), strict=False):
                widget.attrs["aria-label"] = f"{field.label or db_field.verbose_name}: {part}"
        return field


@admin.register(Task)
class TaskAdmin(LabelledSplitDateTimeMixin, admin.ModelAdmin):
    list_display = ("id", "external_id", "title", "source", "status", "missing_since", "updated_at")
    list_filter = ("status", "source", ("missing_since", admin.EmptyFieldListFilter))
    search_fields = ("external_id", "title", "prompt")
    readonly_fields = ("content_hash", "prompt_hash", "created_at", "updated_at")


class ErrorCodeFilter(admin.SimpleListFilter):
    """The error codes that occur; a job without an error is not a blank, unnamed choice."""

    title = "error code"
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        codes = LLMJob.objects.exclude(error_code="").order_by("error_code").values_list("error_code", flat=True)
        return [(code, code) for code in codes.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(error_code=self.value()) if self.value() else queryset


@admin.register(LLMJob)
class LLMJobAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "provider", "model", "status", "progress", "attempts", "created_by", "created_at")
    list_filter = ("status", "provider", "model", "kind", "priority", ErrorCodeFilter)
    search_fields = ("id", "task__external_id", "task__title", "created_by__username", "worker_id")
    list_select_related = ("task", "created_by")
    raw_id_fields = ("task", "created_by", "retry_of")
    readonly_fields = [f.name for f in LLMJob._meta.fields]
    actions = ["cancel_jobs", "retry_jobs"]

    def has_add_permission(self, request):
        return False  # jobs are created by eval/jobs/create.py (review page, API, commands)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            seen.mark_jobs(request.user.pk, [object_id])  # the output with its model: not blind for this user now
        return response

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        done = 0
        for job in queryset:
            try:
                transitions.request_cancel(job.pk, by=request.user.get_username())
                done += 1
            except JobError as error:
                self.message_user(request, f"{job.pk}: {error.message}", messages.WARNING)
        self.message_user(request, f"Cancel requested for {done} job(s).")

    @admin.action(description="Retry selected jobs (failed or cancelled)")
    def retry_jobs(self, request, queryset):
        done = 0
        for job in queryset:
            try:
                create.retry_job(job, by_user=request.user)
                done += 1
            except JobError as error:
                self.message_user(request, f"{job.pk}: {error.message}", messages.WARNING)
        self.message_user(request, f"Created {done} retry job(s).")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("task", "reviewer", "rating", "preferred_job", "updated_at")
    list_filter = ("rating",)
    raw_id_fields = ("task", "reviewer", "preferred_job")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("worker_id", "hostname", "pid", "transport", "last_seen", "jobs_done", "jobs_failed", "in_flight")
    readonly_fields = [f.name for f in WorkerHeartbeat._meta.fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here or on the user's /tokens/ page; the secret is
    shown once, in the confirmation message, and only its hash is kept."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__username")
    raw_id_fields = ("user",)
    actions = ["revoke_tokens"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name")
        return ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        token, raw = ApiToken.issue(obj.user, obj.name)
        obj.pk = token.pk
        obj.prefix, obj.key_hash, obj.created_at = token.prefix, token.key_hash, token.created_at
        self.message_user(
            request, f"Token for {obj.user}: {raw} — copy it now, it will not be shown again.", messages.WARNING
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} token(s).")


QUESTIONS_HINT = (
    "A JSON list of questions, each an object with key (an identifier), label and type: "
    "rating (optional scale [low, high], default [1, 5]), choice (options: a list of at least two texts), "
    "boolean or text; optional required (true/false). For example: "
    '[{"key": "quality", "label": "Overall quality", "type": "rating", "scale": [1, 5], "required": true}, '
    '{"key": "safe", "label": "Safe to show", "type": "boolean"}, '
    '{"key": "notes", "label": "Notes", "type": "text"}]'
)


class RubricForm(forms.ModelForm):
    class Meta:
        model = Rubric
        fields = ("name", "guidelines", "questions")
        help_texts = {"questions": QUESTIONS_HINT}
        widgets = {"questions": forms.Textarea(attrs={"rows": 12, "cols": 90, "spellcheck": "false"})}

    def clean_questions(self):
        questions = self.cleaned_data["questions"]
        try:
            check_questions(questions)
        except InvalidInput as error:
            raise forms.ValidationError(error.message) from None
        return questions


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    """A rubric that judgements already use is never edited in place: saving
    it makes the next version, and the sources that used it move to that."""

    form = RubricForm
    list_display = ("name", "version", "created_at", "created_by")
    search_fields = ("name",)
    readonly_fields = ("version", "created_at", "created_by")

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if change and Judgement.objects.filter(rubric_id=obj.pk).exists():
                old_pk = obj.pk
                obj.pk = None
                obj._state.adding = True
                obj.version = (Rubric.objects.filter(name=obj.name).aggregate(v=Max("version"))["v"] or 0) + 1
                obj.created_by = request.user
                obj.save()
                SourceRubric.objects.filter(rubric_id=old_pk).update(rubric=obj)
                self.message_user(request, f"The rubric was in use: saved as version {obj.version}.")
                return
            if not change:
                obj.created_by = request.user
                obj.version = (Rubric.objects.filter(name=obj.name).aggregate(v=Max("version"))["v"] or 0) + 1
            obj.save()


@admin.register(SourceRubric)
class SourceRubricAdmin(admin.ModelAdmin):
    list_display = ("source", "rubric")
    search_fields = ("source",)


@admin.register(Judgement)
class JudgementAdmin(admin.ModelAdmin):
    """Append-only: judgements are read here, never edited."""

    list_display = ("id", "kind", "task", "reviewer", "judge_job", "verdict", "blind", "withdrawn_at", "created_at")
    list_filter = ("kind", "verdict", "blind", ("withdrawn_at", admin.EmptyFieldListFilter))
    search_fields = ("task__external_id", "task__title", "reviewer__username")
    list_select_related = ("task", "reviewer")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Judgement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    """Read-only: a saved version never changes (save a new one on /templates/ or POST /api/templates)."""

    list_display = ("name", "version", "created_by", "created_at")
    search_fields = ("name",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
