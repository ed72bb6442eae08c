from django.contrib import admin, messages

from eval.jobs import lifecycle
from eval.jobs.errors import JobError
from eval.models import LLMJob, Review, Task, WorkerHeartbeat


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "external_id", "title", "source", "status", "missing_since", "updated_at")
    list_filter = ("status", "source", ("missing_since", admin.EmptyFieldListFilter))
    search_fields = ("external_id", "title", "prompt")
    readonly_fields = ("content_hash", "created_at", "updated_at")


@admin.register(LLMJob)
class LLMJobAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "provider", "model", "status", "progress", "attempts", "created_by", "created_at")
    list_filter = ("status", "provider", "model", "kind", "priority", "error_code")
    search_fields = ("id", "task__external_id", "task__title", "created_by__username", "worker_id")
    list_select_related = ("task", "created_by")
    raw_id_fields = ("task", "created_by", "retry_of")
    readonly_fields = [f.name for f in LLMJob._meta.fields]
    actions = ["cancel_jobs", "retry_jobs"]

    def has_add_permission(self, request):
        return False  # jobs are created through the lifecycle (review page, API, commands)

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        done = 0
        for job in queryset:
            try:
                lifecycle.request_cancel(job.pk, by=request.user.get_username())
                done += 1
            except JobError as error:
                self.message_user(request, f"{job.pk}: {error.message}", messages.WARNING)
        self.message_user(request, f"Cancel requested for {done} job(s).")

    @admin.action(description="Retry selected jobs (failed or cancelled)")
    def retry_jobs(self, request, queryset):
        done = 0
        for job in queryset:
            try:
                lifecycle.retry_job(job, by_user=request.user)
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
